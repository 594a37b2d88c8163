"""Command line: ``python -m composer compose 500``, ``python -m composer continue song.mid`` and
``python -m composer render song.mid`` (audio for MIDI files you already have).

Errors a user can cause print one line and exit with status 2; nothing half-written is left.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pydantic import ValidationError

from composer.errors import ComposerError
from composer.sampling import DEFAULT_TEMPERATURE, DEFAULT_TOP_P
from composer.settings import ComposerSettings


def _options(p: argparse.ArgumentParser) -> None:
    """Options shared by both commands."""
    p.add_argument("--out", type=Path, default=Path("out"), help="folder for the files (default: out/)")
    p.add_argument("--seed", type=int, help="same seed and options, same piece")
    p.add_argument(
        "--temperature",
        type=float,
        default=DEFAULT_TEMPERATURE,
        help="lower is safer, higher wilder (0.05-3)",
    )
    p.add_argument("--top-k", type=int, default=0, help="sample among the k likeliest (0: off)")
    p.add_argument("--top-p", type=float, default=DEFAULT_TOP_P, help="nucleus sampling mass (1: off)")
    p.add_argument("--tempo", type=float, help="beats a minute (20-300)")
    p.add_argument("--transpose", type=int, default=0, help="semitones up or down")
    p.add_argument("--instrument", help="General MIDI program 0-127 or a name such as violin")
    p.add_argument("--style", help="a style the model was trained with")
    p.add_argument("--model", type=Path, help="a .cadenza model (default: COMPOSER_MODEL or the bundled one)")
    p.add_argument("--no-audio", action="store_true", help="skip the audio file")
    p.add_argument("--no-picture", action="store_true", help="skip the piano-roll picture")


def parser() -> argparse.ArgumentParser:
    """The argument parser for both commands."""
    p = argparse.ArgumentParser(prog="python -m composer", description="Compose music with a trained LSTM.")
    sub = p.add_subparsers(dest="command", required=True)
    compose = sub.add_parser("compose", help="compose a new piece", description="Compose a new piece.")
    compose.add_argument("length", type=int, nargs="?", default=500, help="notes or chords, 1-2000 (500)")
    compose.add_argument("--key", help="key to compose in, e.g. C, Am, F#m")
    _options(compose)
    cont = sub.add_parser(
        "continue", help="continue a piece", description="Continue your MIDI/MusicXML/ABC file."
    )
    cont.add_argument("source", type=Path, help="the piece to continue")
    cont.add_argument("--length", type=int, default=200, help="new notes or chords, 1-2000 (200)")
    cont.add_argument("--new-only", action="store_true", help="write only the new part")
    _options(cont)
    render = sub.add_parser(
        "render",
        help="audio for MIDI files",
        description="Render MIDI files to audio (OGG/Opus or MP3) with FluidSynth, as the bot does.",
    )
    render.add_argument("midi", type=Path, nargs="+", help="the MIDI files")
    render.add_argument("--out", type=Path, help="folder for the audio (default: beside each MIDI file)")
    render.add_argument("--format", choices=["ogg", "mp3"], help="default: COMPOSER_AUDIO_FORMAT (ogg)")
    return p


def render_files(settings: ComposerSettings, paths: list[Path], out: Path | None, fmt: str | None) -> int:
    """``python -m composer render``: each MIDI file checked, then rendered; returns the exit status."""
    from composer.audio import AudioUnavailable, find_soundfont, render_audio
    from composer.input_checks import scan_midi

    fmt = fmt or settings.audio_format
    status = 0
    for path in paths:
        try:
            if not path.is_file():
                raise ComposerError(f"There is no file at {path}.")
            scan_midi(path.read_bytes(), name=path.name)
            folder = out or path.parent
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / path.with_suffix(f".{fmt}").name
            info = render_audio(
                path, target, find_soundfont(settings.soundfont), sample_rate=settings.sample_rate, fmt=fmt
            )
        except (ComposerError, AudioUnavailable) as error:
            print(f"error: {path}: {error}", file=sys.stderr)
            status = 2
            continue
        print(f"wrote {target} ({info.seconds:.0f} s of audio, {info.bytes / 1024:.0f} KB)")
    return status


def _settings_problem(error: ValidationError) -> str:
    """One line naming the ``COMPOSER_*`` settings that are not valid."""
    wrong = "; ".join(f"COMPOSER_{str(e['loc'][0]).upper()}: {e['msg']}" for e in error.errors() if e["loc"])
    return f"error: a setting in the environment or .env is not valid: {wrong}"


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    args = parser().parse_args(argv)
    try:
        settings = ComposerSettings(**({"model": args.model} if getattr(args, "model", None) else {}))
    except ValidationError as error:
        print(_settings_problem(error), file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(message)s")
    from composer.service import Composer, ComposeRequest

    try:
        if args.command == "render":
            return render_files(settings, args.midi, args.out, args.format)
        primer = None
        if args.command == "continue":
            if not args.source.is_file():
                raise ComposerError(f"There is no file at {args.source}.")
            primer = args.source
        request = ComposeRequest(
            length=args.length,
            seed=args.seed,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            tempo=args.tempo,
            key=getattr(args, "key", None),
            transpose=args.transpose,
            instrument=args.instrument,
            style=args.style,
            primer=primer,
            primer_name=args.source.name if primer else "",
            new_part_only=getattr(args, "new_only", False),
            audio=not args.no_audio,
            picture=not args.no_picture,
        )
        composer = Composer(settings, workers=1)
        try:
            piece = composer.compose_sync(request, args.out)
        finally:
            composer.close()
    except ComposerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for warning in piece.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    what = f"{piece.events} events"
    if piece.primer_events:
        what = f"{piece.events} new events after {piece.primer_events} of yours"
    print(
        f"Composed {what}: {piece.seconds:.0f} s of music in {piece.key} "
        f"at {piece.tempo:g} bpm, seed {piece.seed}."
    )
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
    return 0
