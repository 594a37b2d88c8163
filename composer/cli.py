"""Command line: ``python -m composer compose 500``, ``python -m composer continue song.mid``,
``python -m composer harmonize "C4 D E F G2 A G"`` (or a file with the melody) and
``python -m composer render song.mid`` (audio for MIDI files you already have).

Errors a user can cause print one line and exit with status 2, Ctrl-C one line and status 130;
nothing half-written is left, and neither is an output folder that a failed run created empty.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from composer.cli_parser import DefaultsHelp, OneLineParser
from composer.errors import ComposerError, InvalidOptionError
from composer.generation.sampling import DEFAULT_TEMPERATURE, DEFAULT_TOP_P, SamplingOptions
from composer.settings import DEFAULT_MODEL, ComposerSettings

if TYPE_CHECKING:
    from composer.service import ComposeRequest, Composition

MAX_LENGTH = 2000  # the composer's own cap (composer.service.MAX_LENGTH), kept here to stay light


class ModelFacts:
    """What ``--help`` and the length message say about a model, read without its weights (2 ms)."""

    def __init__(self, path: Path) -> None:
        """Read ``path``'s styles and tempo defaults; a model that cannot be read just says nothing."""
        from composer.model import artifact

        try:
            document = artifact.read_document(path)
        except (ComposerError, OSError, ValueError, KeyError):
            document = {}
        self.styles: tuple[str, ...] = tuple(document.get("vocabulary", {}).get("styles", ()))
        self.defaults: dict = document.get("defaults", {})

    def how_long(self, length: int, style: str | None, tempo: float | None) -> str:
        """``2000 make about 11 minutes of bach at 100 bpm``, from the style's tempo and its notes'
        pace in the training music; empty for models that did not record that pace."""
        style = style or (self.styles[0] if self.styles else None)
        per_event = self.defaults.get("quarters_per_event_by_style", {}).get(style)
        bpm = tempo or self.defaults.get("tempo_by_style", {}).get(style) or self.defaults.get("tempo")
        if not per_event or not bpm:
            return ""
        return f"{length} make about {length * per_event / bpm:.0f} minutes of {style} at {bpm:g} bpm"


def _sampling(option: str, cast: Callable[[str], float]) -> Callable[[str], float]:
    """An argparse type that checks a sampling option the way the composer does, so that a wrong
    value is named by its flag (``argument --top-p: must be above 0...``)."""

    def check(text: str) -> float:
        value = cast(text)  # a ValueError reads "invalid float value: 'x'"
        try:
            SamplingOptions(**{option: value})
        except InvalidOptionError as error:
            raise argparse.ArgumentTypeError(str(error).removeprefix(f"{option} ")) from None
        return value

    check.__name__ = cast.__name__
    return check


def _options(p: argparse.ArgumentParser, facts: ModelFacts) -> None:
    """Options shared by compose and continue."""
    _common(p)
    p.add_argument(
        "--top-k", type=_sampling("top_k", int), default=0, help="sample among the k likeliest (0: off)"
    )
    p.add_argument(
        "--top-p",
        type=_sampling("top_p", float),
        help=f"nucleus sampling mass, 1: off (default: the model's for the style, else {DEFAULT_TOP_P:g})",
    )
    _settings(p, facts)


def _common(p: argparse.ArgumentParser, temperature: float | None = None) -> None:
    """Where the files go, the seed and the temperature: options of every command that composes."""
    p.add_argument("--out", type=Path, default=Path("out"), help="folder for the files")
    p.add_argument("--seed", type=int, help="same seed and options, same piece (default: random, printed)")
    p.add_argument(
        "--temperature",
        type=_sampling("temperature", float),
        default=temperature,
        help="lower is safer, higher wilder (0.05-3)"
        + ("" if temperature else f" (default: the model's for the style, else {DEFAULT_TEMPERATURE:g})"),
    )


def _settings(p: argparse.ArgumentParser, facts: ModelFacts) -> None:
    """Tempo, transposition, instrument, style, model and the files to skip."""
    p.add_argument("--tempo", type=float, help="beats a minute, 20-300 (default: the style's)")
    p.add_argument("--transpose", type=int, default=0, help="semitones up or down, up to 24")
    p.add_argument(
        "--instrument", help="General MIDI program 0-127 or a name such as violin (default: piano)"
    )
    styles = ", ".join(facts.styles) or "see the model"
    p.add_argument("--style", help=f"a style the model was trained with: {styles} (default: the first)")
    p.add_argument("--model", type=Path, help="a .cadenza model (default: COMPOSER_MODEL or the bundled one)")
    p.add_argument("--no-audio", action="store_true", help="skip the audio file")
    p.add_argument("--no-picture", action="store_true", help="skip the piano-roll picture")


def parser(facts: ModelFacts | None = None) -> argparse.ArgumentParser:
    """The argument parser for the three commands; ``facts`` fills in the model's styles."""
    facts = facts or ModelFacts(DEFAULT_MODEL)
    longest = facts.how_long(MAX_LENGTH, None, None)
    length_help = f"notes and chords, 1-{MAX_LENGTH}" + (f" ({longest})" if longest else "")
    p = OneLineParser(
        prog="python -m composer",
        description="Compose music with a trained LSTM.",
        formatter_class=DefaultsHelp,
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    compose = sub.add_parser(
        "compose",
        help="compose a new piece",
        description="Compose a new piece.",
        formatter_class=DefaultsHelp,
    )
    compose.add_argument("length", type=int, nargs="?", default=500, metavar="LENGTH", help=length_help)
    compose.add_argument("--key", help="key to compose in, e.g. C, Am, F#m (default: the model's choice)")
    _options(compose, facts)
    cont = sub.add_parser(
        "continue",
        help="continue a piece",
        description="Continue your MIDI/MusicXML/ABC file.",
        formatter_class=DefaultsHelp,
    )
    cont.add_argument("source", type=Path, metavar="FILE", help="the piece to continue")
    cont.add_argument("--length", type=int, default=200, help=f"new {length_help}")
    cont.add_argument("--new-only", action="store_true", help="write only the new part")
    _options(cont, facts)
    harmony = sub.add_parser(
        "harmonize",
        help="harmonize a melody",
        description=(
            "Write voices under a melody, which stays as it is: ABC (K:G |GABc dedB|), note names with "
            "lengths (C4 D E F G2 A G) or a MIDI/MusicXML/ABC file whose top line is the melody."
        ),
        formatter_class=DefaultsHelp,
    )
    harmony.add_argument("melody", metavar="MELODY", help="the melody as text, or a file that holds it")
    harmony.add_argument("--voices", type=int, default=4, help="parts in all, the melody included (2-4)")
    _common(harmony, temperature=0.5)  # composer.harmonize.HARMONY_TEMPERATURE, kept here to stay light
    _settings(harmony, facts)
    render = sub.add_parser(
        "render",
        help="audio for MIDI files",
        description="Render MIDI files to audio (OGG/Opus or MP3) with FluidSynth, as the bot does.",
        formatter_class=DefaultsHelp,
    )
    render.add_argument("midi", type=Path, nargs="+", metavar="FILE", help="the MIDI files")
    render.add_argument("--out", type=Path, default=Path("out"), help="folder for the audio")
    render.add_argument("--format", choices=["ogg", "mp3"], help="default: COMPOSER_AUDIO_FORMAT (ogg)")
    return p


class _NotAFile(ComposerError):
    """An input path that is missing, a folder or empty; the message names it."""


def check_input(path: Path) -> None:
    """The same message for the same problem whichever command reads ``path``."""
    if path.is_dir():
        raise _NotAFile(f"{path} is a folder, not a file.")
    if not path.is_file():
        raise _NotAFile(f"There is no file at {path}.")
    if path.stat().st_size == 0:
        raise _NotAFile(f'"{path.name}" is empty.')


@contextlib.contextmanager
def removed_if_left_empty(folder: Path) -> Iterator[None]:
    """Remove ``folder`` (and the parents made for it) afterwards if this run created it and
    left nothing in it: a failed or interrupted run leaves no empty output folder behind."""
    made = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    try:
        yield
    finally:
        for created in made:
            try:
                created.rmdir()
            except OSError:  # not empty (or never made): keep it and everything above
                break


def render_files(settings: ComposerSettings, paths: list[Path], out: Path, fmt: str | None) -> int:
    """``python -m composer render``: each MIDI file checked, then rendered; returns the exit status."""
    from composer.midi.checks import read_midi
    from composer.render.audio import AudioUnavailable, find_soundfont, render_audio

    fmt = fmt or settings.audio_format
    status = 0
    with removed_if_left_empty(out):
        for path in paths:
            try:
                check_input(path)
                read_midi(path.read_bytes(), name=path.name)  # drums alone are fine to render
                out.mkdir(parents=True, exist_ok=True)
                target = out / path.with_suffix(f".{fmt}").name
                info = render_audio(
                    path,
                    target,
                    find_soundfont(settings.soundfont),
                    sample_rate=settings.sample_rate,
                    fmt=fmt,
                )
            except _NotAFile as error:
                print(f"error: {error}", file=sys.stderr)
                status = 2
                continue
            except (ComposerError, AudioUnavailable) as error:
                print(f"error: {path}: {error}", file=sys.stderr)
                status = 2
                continue
            print(f"wrote {target} ({info.seconds:.0f} s of audio, {info.bytes / 1024:.0f} KB)")
    return status


def _compose(
    settings: ComposerSettings, out: Path, request: Callable[[], ComposeRequest]
) -> Composition | None:
    """Make the piece ``request()`` asks for into ``out``; ``None`` once a user error is printed
    (then ``out`` is left as it was). Warnings are printed as they come."""
    from composer.service import Composer

    with removed_if_left_empty(out):
        try:
            asked = request()
            composer = Composer(settings, workers=1)
            try:
                piece = composer.compose_sync(asked, out)
            finally:
                composer.close()
        except ComposerError as error:
            print(f"error: {error}", file=sys.stderr)
            return None
    for warning in piece.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return piece


def harmonize_melody(settings: ComposerSettings, args: argparse.Namespace) -> int:
    """``python -m composer harmonize MELODY``: the melody as text, or the file it names."""
    from composer.service import ComposeRequest

    source = Path(args.melody)
    is_file = len(args.melody) < 4096 and "\n" not in args.melody and source.suffix != "" and source.exists()

    def request() -> ComposeRequest:
        if is_file:
            check_input(source)
        return ComposeRequest(
            **_shared_options(args),
            melody=None if is_file else args.melody,
            primer=source if is_file else None,
            primer_name=source.name if is_file else "",
            harmonize=True,
            voices=args.voices,
        )

    piece = _compose(settings, args.out, request)
    if piece is None:
        return 2
    print(
        f"Harmonized {piece.events} melody notes in {piece.voices} voices ({piece.notes} notes in all): "
        f"{piece.seconds:.0f} s of music in {piece.key} at {piece.tempo:g} bpm, seed {piece.seed}."
    )
    _report(piece)
    return 0


def _shared_options(args: argparse.Namespace) -> dict[str, object]:
    """The request options that compose, continue and harmonize take alike."""
    return {
        "seed": args.seed,
        "temperature": args.temperature,
        "tempo": args.tempo,
        "transpose": args.transpose,
        "instrument": args.instrument,
        "style": args.style,
        "audio": not args.no_audio,
        "picture": not args.no_picture,
    }


def _report(piece: Composition) -> None:
    """The files written and the time each stage took."""
    for made in (piece.midi, piece.audio, piece.picture):
        if made is not None:
            print(f"  wrote {made} ({made.stat().st_size / 1024:.0f} KB)")
    stages = []
    for stage, seconds in piece.timings.items():
        if stage in ("render", "encode"):
            continue
        text = f"{stage} {seconds:.2f}s"
        if stage == "audio" and "render" in piece.timings:
            text += f" (render {piece.timings['render']:.2f}s, encode {piece.timings['encode']:.2f}s)"
        stages.append(text)
    print(f"  time: {', '.join(stages)}")


def _settings_problem(error: ValidationError) -> str:
    """One line naming the ``COMPOSER_*`` settings that are not valid."""
    wrong = "; ".join(f"COMPOSER_{str(e['loc'][0]).upper()}: {e['msg']}" for e in error.errors() if e["loc"])
    return f"error: a setting in the environment or .env is not valid: {wrong}"


def _model_asked(argv: list[str] | None) -> Path:
    """The model whose styles ``--help`` lists: ``--model``, else ``COMPOSER_MODEL``, else the bundled one."""
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--model", type=Path)
    asked = early.parse_known_args(argv)[0].model
    if asked is not None:
        return asked
    try:
        return ComposerSettings().model
    except ValidationError:  # reported after parsing, in one line
        return DEFAULT_MODEL


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (2 for a mistake, 130 for Ctrl-C)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("stopped (Ctrl-C).", file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    facts = ModelFacts(_model_asked(argv))
    args = parser(facts).parse_args(argv)
    try:
        settings = ComposerSettings(**({"model": args.model} if getattr(args, "model", None) else {}))
    except ValidationError as error:
        print(_settings_problem(error), file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(message)s")
    if args.command == "render":
        return render_files(settings, args.midi, args.out, args.format)
    if args.command == "harmonize":
        return harmonize_melody(settings, args)
    if not 1 <= args.length <= MAX_LENGTH:
        name = "LENGTH" if args.command == "compose" else "--length"
        longest = facts.how_long(MAX_LENGTH, args.style, args.tempo)
        print(
            f"error: {name} must be from 1 to {MAX_LENGTH} notes and chords"
            f"{f' ({longest})' if longest else ''}, not {args.length}.",
            file=sys.stderr,
        )
        return 2
    from composer.service import ComposeRequest

    def request() -> ComposeRequest:
        primer = None
        if args.command == "continue":
            check_input(args.source)
            primer = args.source
        return ComposeRequest(
            **_shared_options(args),
            length=args.length,
            top_k=args.top_k,
            top_p=args.top_p,
            key=getattr(args, "key", None),
            primer=primer,
            primer_name=args.source.name if primer else "",
            new_part_only=getattr(args, "new_only", False),
        )

    piece = _compose(settings, args.out, request)
    if piece is None:
        return 2
    what = f"{piece.events} notes and chords ({piece.notes} notes in all)"
    if piece.primer_events:
        what = (
            f"{piece.events} new notes and chords ({piece.notes} notes in all) "
            f"after the {piece.primer_events} of yours"
        )
    print(
        f"Composed {what}: {piece.seconds:.0f} s of music in {piece.key} "
        f"at {piece.tempo:g} bpm, seed {piece.seed}."
    )
    _report(piece)
    return 0
