"""Command line for training: ``python -m training --corpus bach --out models/NAME``, and
``python -m training evaluate MODEL`` for the evaluation report (:mod:`training.evaluate`)."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from composer.cli_parser import DefaultsHelp, OneLineParser
from composer.generation.sampling import SamplingOptions
from composer.model.network import ModelConfig
from training.sources import CORPUS_SETS


def _shifts(text: str) -> tuple[int, ...]:
    """``-3..3`` or ``-2,0,2`` -> semitone shifts for transposition copies."""
    if ".." in text:
        low, high = (int(v) for v in text.split(".."))
        return tuple(range(low, high + 1))
    return tuple(int(v) for v in text.split(","))


def _file_limit(text: str) -> tuple[str, int]:
    """``3`` -> every source's first 3 files; ``folk=3`` -> only the folk set's."""
    source, _, count = text.rpartition("=")
    if not count.isdigit() or int(count) < 1:
        raise argparse.ArgumentTypeError(f"expected N or SOURCE=N with N at least 1, not {text!r}")
    return source or "*", int(count)


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow without its start-up chatter on the console (oneDNN and CPU notes, twice).

    ``TF_CPP_MIN_LOG_LEVEL=3`` (as in the Dockerfile, unless it is set already) quiets TensorFlow's
    own log; the oneDNN notes are printed before TensorFlow reads it, so standard error points to
    /dev/null while the import runs. An import that fails still says why: the error is raised after
    standard error is back. With ``TF_CPP_MIN_LOG_LEVEL`` below 2 everything is shown.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules or os.environ["TF_CPP_MIN_LOG_LEVEL"] in ("0", "1"):
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as nowhere:
            os.dup2(nowhere.fileno(), 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def parser() -> argparse.ArgumentParser:
    """The argument parser (shared with the README's option list)."""
    p = OneLineParser(
        prog="python -m training",
        description="Train a Cadenza model on music21's bundled corpus or your own MIDI folder.",
        epilog="Evaluate a model with: python -m training evaluate MODEL (see its --help).",
        formatter_class=DefaultsHelp,
    )
    p.add_argument("--corpus", action="append", default=[], choices=sorted(CORPUS_SETS), help="bundled set")
    p.add_argument("--midi-dir", action="append", default=[], type=Path, help="folder of your MIDI files")
    p.add_argument("--out", required=True, type=Path, help="artifact path, e.g. models/mine(.cadenza)")
    p.add_argument(
        "--from",
        dest="base",
        type=Path,
        metavar="MODEL",
        help="fine-tune this .cadenza model on the sources instead of starting afresh (best for small "
        "folders; its network size is kept)",
    )
    p.add_argument("--arch", default="lstm", choices=["lstm", "seed"], help="network family")
    p.add_argument("--units", type=int, help="LSTM width (default 256; seed 512)")
    p.add_argument("--layers", type=int, help="LSTM layers (default 2; seed 3)")
    p.add_argument(
        "--line-moves",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="score each chord by how its bass and top line move from the chord before (added to a "
        "--from model that has none, starting from zero)",
    )
    p.add_argument("--epochs", type=int, default=30, help="most epochs")
    p.add_argument("--batch-size", type=int, default=64, help="windows per training step")
    p.add_argument("--sequence-length", type=int, default=64, help="events per training window")
    p.add_argument(
        "--learning-rate", type=float, help="Adam's learning rate (default 0.002; 0.0005 with --from)"
    )
    p.add_argument("--validation", type=float, default=0.1, help="share of pieces held out")
    p.add_argument(
        "--transpose", type=_shifts, default=(0,), help="semitone shifts to add, e.g. -3..3 (default: none)"
    )
    p.add_argument("--max-pitch-sets", type=int, default=3000, help="largest chord vocabulary")
    p.add_argument("--patience", type=int, default=4, help="epochs without improvement before stopping")
    p.add_argument(
        "--max-files",
        action="append",
        default=[],
        type=_file_limit,
        metavar="[SOURCE=]N",
        help="use only the first N files of each source, or of one source (repeatable)",
    )
    p.add_argument("--max-minutes", type=float, help="time budget: stop after the last epoch that fits in it")
    p.add_argument(
        "--runs-dir",
        type=Path,
        help="folder for the run's checkpoints and logs, in RUNS_DIR/NAME (default: runs/ beside --out)",
    )
    p.add_argument("--resume", action="store_true", help="go on from the last epoch saved in the run folder")
    p.add_argument(
        "--tensorboard",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write TensorBoard logs to the run folder's tensorboard/",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the shuffling and the network")
    p.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")
    return p


def evaluate_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m training evaluate``."""
    p = OneLineParser(
        prog="python -m training evaluate",
        description="Measure a model on its held-out pieces and on pieces it generates; write a report.",
        formatter_class=DefaultsHelp,
    )
    p.add_argument("model", type=Path, help="the .cadenza file to evaluate")
    p.add_argument(
        "--pieces", type=int, default=100, help="pieces to generate (with --harmonize: most chorales)"
    )
    p.add_argument("--length", type=int, default=500, help="notes and chords per generated piece")
    p.add_argument("--seed", type=int, default=0, help="seed of the first piece (the others follow)")
    p.add_argument("--out", type=Path, help="report folder (default reports/<model name>)")
    p.add_argument("--compare", type=Path, help="a second model (the seed baseline) for extra columns")
    p.add_argument(
        "--temperature",
        type=float,
        help="sampling temperature (default: the composer's; with --harmonize the harmonizer's)",
    )
    p.add_argument("--top-p", type=float, help="nucleus mass on the chords (default: the composer's)")
    p.add_argument("--min-p", type=float, help="keep chords at least this times the likeliest's probability")
    p.add_argument("--typical-p", type=float, help="locally typical sampling's mass on the chords")
    p.add_argument(
        "--field-temperature",
        action="append",
        default=[],
        metavar="FIELD=T",
        help="a temperature for one field (pitch, duration, ioi, velocity) over --temperature; repeatable",
    )
    p.add_argument(
        "--lean",
        action="append",
        default=[],
        metavar="NAME=W",
        help="W logits for each chord whose bass or top line moves so: bass_repeat, bass_step, "
        "bass_third, bass_fourth, bass_sixth, bass_octave, bass_wide, and the same for top; repeatable",
    )
    p.add_argument(
        "--key-lean",
        type=float,
        help="W times each chord's fit to the key a new piece is to be in, added at every event "
        "(0 off; new pieces also open on that key's tonic chord)",
    )
    p.add_argument(
        "--fit-leans",
        action="store_true",
        help="with --keep-for STYLE: first fit the leans (from any given) so that STYLE's new pieces move "
        "their bass and top as its training pieces do; the report then measures that sampling",
    )
    p.add_argument(
        "--candidates",
        type=int,
        help="candidates per piece: a style's critic keeps the one likeliest real, else the network's "
        "likeliest is kept (default: the critic's own count, else 1; with --harmonize the harmonizer's own)",
    )
    p.add_argument(
        "--fit-critic",
        metavar="STYLE",
        help="first fit a critic for STYLE's new pieces (trees that tell its training pieces from the "
        "model's own, made with the sampling given or else STYLE's own) and write it into MODEL; the "
        "composer then keeps the likeliest real of several candidates",
    )
    p.add_argument(
        "--candidate-keys",
        action="store_true",
        help="with --fit-critic: each candidate of a new piece draws its own key from the style's spread, "
        "and the critic chooses the key among those that came out in the mode the piece drew",
    )
    p.add_argument(
        "--no-critic",
        action="store_true",
        help="judge the pieces as the network alone chooses them, without the styles' critics",
    )
    p.add_argument(
        "--tell-apart",
        action="store_true",
        help="also, per style, how well two classifiers tell generated pieces from held-out ones",
    )
    p.add_argument(
        "--continuations",
        type=Path,
        metavar="DIR",
        help="instead, continue every piece in DIR (a folder, or a corpus set such as freedoom) by --length "
        "events and compare each with its own end",
    )
    p.add_argument(
        "--keep-for",
        metavar="STYLE",
        help="after the report, write the sampling options given here into MODEL as STYLE's own for "
        "new pieces (what the composer uses when a request gives none)",
    )
    p.add_argument(
        "--harmonize",
        action="store_true",
        help="instead, harmonize the soprano lines of the held-out Bach chorales and judge them beside "
        "Bach's own harmonizations and random in-key notes",
    )
    return p


def _continuations(model: Path, folder: Path, out: Path | None, length: int, seed: int) -> list[Path]:
    """``evaluate --continuations``: the report of :mod:`training.continuations`, as JSON and Markdown."""
    import json

    from training.continuations import evaluate_continuations, markdown

    out = out or Path("reports") / f"{model.stem}-continuations"
    result = evaluate_continuations(model, folder, length, seed, pictures=out / "pictures")
    out.mkdir(parents=True, exist_ok=True)
    (out / "continuations.json").write_text(json.dumps(result, indent=1))
    (out / "continuations.md").write_text(markdown(result))
    return [out / "continuations.json", out / "continuations.md"]


def _sampling(args: argparse.Namespace) -> SamplingOptions | None:
    """The sampling asked for on the command line, over the composer's defaults; None if none."""
    given = {
        "temperature": args.temperature,
        "top_p": args.top_p,
        "min_p": args.min_p,
        "typical_p": args.typical_p,
        "key_lean": args.key_lean,
    }
    given = {name: value for name, value in given.items() if value is not None}
    named = (
        ("field_temperatures", "--field-temperature", args.field_temperature, "FIELD=T, such as ioi=0.7"),
        ("leans", "--lean", args.lean, "NAME=W, such as bass_step=0.25"),
    )
    for option, flag, texts, example in named:
        if texts:
            given[option] = dict(_named_value(flag, text, example) for text in texts)
    return replace(SamplingOptions(), **given) if given else None


def _check_style(model: Path, style: str, flag: str = "--keep-for") -> None:
    """Refuse ``--keep-for STYLE`` (or ``flag``) before evaluating when the model has no such style."""
    from composer.model import artifact

    styles = artifact.read_document(model).get("vocabulary", {}).get("styles", [])
    if style not in styles:
        raise ValueError(f"{flag}: the model has no style {style!r}; it has {', '.join(styles)}")


def _keep_sampling(model: Path, style: str, sampling: SamplingOptions) -> Path:
    """Write ``sampling`` into ``model`` as ``style``'s own for new pieces (``evaluate --keep-for``)."""
    from composer.model import artifact

    kept = artifact.read_document(model).get("defaults", {}).get("sampling_by_style", {})
    return artifact.set_defaults(model, sampling_by_style={**kept, style: sampling.to_dict()})


def _fit_leans(model: Path, style: str, sampling: SamplingOptions, out: Path | None) -> SamplingOptions:
    """``evaluate --fit-leans``: ``sampling`` with leans fitted to ``style``'s training pieces
    (:mod:`training.leans`); the rounds are printed and written beside the report."""
    from composer.model import artifact
    from composer.model.stepper import Stepper
    from training.evaluate import training_pieces
    from training.leans import fit_leans, fit_table, line_moves

    loaded = artifact.load(model)
    target = [p.events for p in training_pieces(loaded) if p.style == style]
    fitted, history = fit_leans(loaded, Stepper(loaded.config, loaded.weights), style, sampling, target)
    table = fit_table(history, line_moves(target))
    out = out or Path("reports") / model.stem
    out.mkdir(parents=True, exist_ok=True)
    (out / f"leans-{style}.md").write_text(f"Leans fitted for {style}: {fitted.describe()}\n\n{table}\n")
    print(table)
    print(f"kept: {fitted.describe()}")
    return fitted


def _fit_critic(
    model: Path, style: str, sampling: SamplingOptions | None, candidates: int | None, own_keys: bool
) -> Path:
    """``evaluate --fit-critic``: a critic for ``style`` (:mod:`training.critic`), written into
    ``model`` beside the others."""
    from composer.model import artifact
    from composer.model.stepper import Stepper
    from training.critic import CANDIDATES, fit_critic
    from training.evaluate import training_pieces

    loaded = artifact.load(model)
    target = [p.events for p in training_pieces(loaded) if p.style == style]
    stepper = Stepper(loaded.config, loaded.weights)
    critic = fit_critic(loaded, stepper, style, target, sampling, candidates or CANDIDATES, own_keys)
    kept = loaded.defaults.get("critic_by_style", {})
    keys = ", each drawing its own key" if own_keys else ""
    trees = critic.feature.shape[0]
    print(f"critic for {style}: {trees} trees, the likeliest real of {critic.candidates}{keys}")
    return artifact.set_defaults(model, critic_by_style={**kept, style: critic.to_dict()})


def _named_value(flag: str, text: str, example: str) -> tuple[str, float]:
    """``NAME=VALUE`` from a repeatable option such as ``--lean``, as a pair."""
    name, _, value = text.partition("=")
    try:
        return name.strip(), float(value)
    except ValueError:
        raise ValueError(f"{flag} wants {example}, not {text!r}") from None


def evaluate_main(argv: list[str]) -> int:
    """Run an evaluation; returns the process exit code."""
    args = evaluate_parser().parse_args(argv)
    if args.pieces < 1 or args.length < 1:
        evaluate_parser().error("--pieces and --length must be at least 1")
    given = (args.temperature, args.top_p, args.min_p, args.typical_p, args.key_lean)
    given += (*args.field_temperature, *args.lean)
    if args.keep_for is not None and (
        args.harmonize or args.continuations is not None or all(v is None for v in given)
    ):
        evaluate_parser().error("--keep-for keeps the sampling options of a plain evaluation: give them too")
    if args.fit_critic is not None and (args.harmonize or args.continuations is not None or args.no_critic):
        evaluate_parser().error(
            "--fit-critic fits the critic a plain evaluation measures: no --harmonize, "
            "--continuations or --no-critic with it"
        )
    if args.candidate_keys and args.fit_critic is None:
        evaluate_parser().error("--candidate-keys is a setting of the critic --fit-critic fits: give it too")
    if args.fit_leans and args.keep_for is None:
        evaluate_parser().error("--fit-leans fits the leans of the style --keep-for names: give it too")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    _import_tensorflow_quietly()
    from composer.errors import ComposerError
    from training.evaluate import evaluate_files

    try:
        sampling = _sampling(args)
        if args.keep_for is not None:
            _check_style(args.model, args.keep_for)
        if args.fit_leans and sampling is not None:
            sampling = _fit_leans(args.model, args.keep_for, sampling, args.out)
        fitted = []
        if args.fit_critic is not None:
            _check_style(args.model, args.fit_critic, "--fit-critic")
            fitted.append(
                _fit_critic(args.model, args.fit_critic, sampling, args.candidates, args.candidate_keys)
            )
        if args.harmonize:
            from training.harmony_eval import harmonize_files

            written, table = harmonize_files(
                args.model, args.out, args.pieces, args.candidates, args.seed, args.temperature
            )
            print(table)
        elif args.continuations is not None:
            written = _continuations(args.model, args.continuations, args.out, args.length, args.seed)
        else:
            written = evaluate_files(
                args.model,
                args.out,
                args.compare,
                args.pieces,
                args.length,
                args.seed,
                telling=args.tell_apart,
                sampling=sampling,
                candidates=args.candidates,
                critics=not args.no_critic,
            )
            written = fitted + written
            if sampling is not None and args.keep_for is not None:
                written.append(_keep_sampling(args.model, args.keep_for, sampling))
    except (ComposerError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run a training job, or an evaluation when the first argument is ``evaluate``; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["evaluate"]:
        return evaluate_main(argv[1:])
    args = parser().parse_args(argv)
    if not args.corpus and not args.midi_dir:
        parser().error("give at least one --corpus or --midi-dir")
    for folder in args.midi_dir:
        if not folder.is_dir():
            parser().error(f"--midi-dir {folder} is not a folder")
    if args.base is not None and not args.base.is_file():
        parser().error(f"--from {args.base}: there is no model file there")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    _import_tensorflow_quietly()
    from training.train import TrainOptions, train

    base = ModelConfig.seed() if args.arch == "seed" else ModelConfig()
    try:
        config = ModelConfig.from_dict(
            {
                **base.to_dict(),
                **{k: v for k, v in (("units", args.units), ("layers", args.layers)) if v},
                **({} if args.line_moves is None else {"line_moves": args.line_moves}),
            }
        )
    except ValueError as error:
        parser().error(str(error))
    options = TrainOptions(
        out=args.out,
        corpus=tuple(args.corpus),
        midi_dirs=tuple(args.midi_dir),
        model=config,
        epochs=args.epochs,
        batch_size=args.batch_size,
        sequence_length=args.sequence_length,
        learning_rate=args.learning_rate or (5e-4 if args.base else 2e-3),
        base=args.base,
        validation=args.validation,
        transpose=args.transpose,
        max_pitch_sets=args.max_pitch_sets,
        patience=args.patience,
        seed=args.seed,
        max_files=dict(args.max_files),
        max_minutes=args.max_minutes,
        runs_dir=args.runs_dir,
        resume=args.resume,
        tensorboard=args.tensorboard,
        verbose=2 if args.quiet else 1,
        command=shlex.join(["python", "-m", "training", *argv]),
    )
    try:
        report = train(options)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    t = report.training
    print(
        f"wrote {report.path} ({report.path.stat().st_size / 1e6:.1f} MB): {t['pieces']['train']} pieces, "
        f"{t['epochs_run']} epochs, best epoch {t['best_epoch']}, fit {t['seconds']['fit']:.0f} s"
    )
    return 0
