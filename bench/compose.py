"""Issue 7, item 2: ``compose 500`` end to end, stage by stage, and the cold start.

Why: the target is a piece in about the time it takes to read the command (median at most 3 s
for ``compose 500`` with the default SoundFont) and a CLI whose first event comes within 3 s of
its start. This measures, in one run:

- warm: ``--runs`` pieces through the composer's async API (``await Composer.compose``) with the
  model loaded first (not timed); the stages the service times (generate, MIDI, picture, audio)
  with the audio split into FluidSynth's render and the scan + Opus encode (from the figures
  ``composer.render.audio`` logs), the service's total and the wall time of the ``await``; median and
  95th percentile;
- cold: a fresh ``python -m composer compose 1 --no-audio --no-picture`` from process start to
  exit (``--cold-runs`` times), and in fresh processes the time to ``import composer.service``,
  to ``artifact.load`` the model (TensorFlow's import included), to the first event generated,
  the import of ``keras`` alone, and the heaviest imports under ``composer.service``.

Run ``python bench/compose.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, median, parser, percentile, print_footer, print_header, print_table

STAGES = ("generate", "midi", "picture", "audio")


class AudioLog(logging.Handler):
    """Collects FluidSynth's render and the encode seconds that ``render_audio`` logs per piece."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[tuple[float, float, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("rendered %s") and isinstance(record.args, tuple):
            _name, seconds, _fmt, _kbps, _size, synth, encode = record.args
            self.records.append((float(seconds), float(synth), float(encode)))


def fluidsynth_alone(midi: Path, wav: Path) -> float:
    """Seconds FluidSynth takes to render ``midi`` to a WAV with its default settings at 24 kHz:
    the floor a finished piece is measured against."""
    from composer.render.audio import find_soundfont

    start = time.perf_counter()
    subprocess.run(
        ["fluidsynth", "-ni", "-F", str(wav), "-r", "24000", str(find_soundfont(None)), str(midi)],
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - start


async def warm_runs(
    model: Path, length: int, runs: int, out: Path
) -> tuple[list[dict[str, float]], float, float]:
    """Compose ``runs`` pieces one after another with a loaded model.

    Returns their timings, the load time and the time of a first, untimed piece of 20 events
    (it pays the lazy imports, such as music21's, that every later piece finds done).
    """
    from composer.service import Composer, ComposeRequest
    from composer.settings import ComposerSettings

    composer = Composer(ComposerSettings(model=model))
    start = time.perf_counter()
    composer.load()
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    await composer.compose(ComposeRequest(length=20, seed=0), out / "warm-up")
    first = time.perf_counter() - start
    handler = AudioLog()
    audio_log = logging.getLogger("composer.render.audio")
    audio_log.addHandler(handler)
    audio_log.setLevel(logging.INFO)
    rows = []
    try:
        for run in range(runs):
            start = time.perf_counter()
            piece = await composer.compose(ComposeRequest(length=length, seed=run), out / str(run))
            wall = time.perf_counter() - start
            row = {stage: piece.timings.get(stage, 0.0) for stage in STAGES}
            row["total"] = piece.timings["total"]
            row["wall"] = wall
            row["events"] = piece.events
            row["music seconds"] = piece.seconds
            row["fluidsynth alone"] = fluidsynth_alone(piece.midi, out / f"alone-{run}.wav")
            row["total / alone"] = row["total"] / row["fluidsynth alone"]
            if len(handler.records) > run:
                audio_seconds, synth, encode = handler.records[run]
                row["render"], row["encode"], row["audio seconds"] = synth, encode, audio_seconds
            for key in ("render", "encode"):  # the service's own split, where it reports one
                if key in piece.timings:
                    row[key] = piece.timings[key]
            rows.append(row)
    finally:
        audio_log.removeHandler(handler)
        composer.close()
    return rows, loaded, first


def what_if(model: Path, length: int, reps: int, out: Path) -> dict[str, list[float]]:
    """Stage costs apart, and the picture drawn before the audio or while it renders.

    The service draws the picture while FluidSynth (a separate process) renders and the encoder
    works; this measures what that overlap is worth on the same piece, with the same files.
    """
    from concurrent.futures import ThreadPoolExecutor

    from composer.generation.generate import PieceRequest, generate
    from composer.keys import detect_key
    from composer.midi.arrange import new_piece
    from composer.midi.write import write_midi_file
    from composer.model import artifact
    from composer.model.stepper import Stepper
    from composer.render.audio import AudioUnavailable, find_soundfont, render_audio
    from composer.render.pianoroll import draw_piano_roll

    loaded = artifact.load(model)
    vocabulary = loaded.vocabulary
    fixed = {"duration": 3, "ioi": 3, "velocity": 3} if loaded.config.arch == "seed" else {}
    primer = vocabulary.encode([], start=True, end=False).rows
    request = PieceRequest(length=length, seed=1, primer=primer, fixed=fixed)
    (piece,) = generate(Stepper(loaded.config, loaded.weights), [request])
    events = [vocabulary.decode_event(row) for row in piece.rows]
    tempo = loaded.default_tempo
    arranged = new_piece(events, tempo=tempo, key=detect_key(events), program=0)
    notes = arranged.notes
    soundfont = find_soundfont(None)
    figures: dict[str, list[float]] = {
        k: [] for k in ("key", "midi", "picture", "audio", "apart", "together")
    }

    def write_arranged(events: list, tempo: float, path: Path) -> None:
        write_midi_file(new_piece(events, tempo=tempo, key=detect_key(events), program=0).midi, path)

    def timed(key: str, fn: object, *args: object, **kwargs: object) -> None:
        start = time.perf_counter()
        fn(*args, **kwargs)  # type: ignore[operator]
        figures[key].append(time.perf_counter() - start)

    for rep in range(reps):
        timed("key", detect_key, events)
        midi = out / f"what-if-{rep}.mid"
        timed("midi", write_arranged, events, tempo, midi)
        if soundfont is None:
            continue
        start = time.perf_counter()
        timed("picture", draw_piano_roll, notes, out / "apart.png", tempo=tempo)
        try:
            timed("audio", render_audio, midi, out / "apart.ogg", soundfont)
        except AudioUnavailable:
            return figures
        figures["apart"].append(time.perf_counter() - start)
        start = time.perf_counter()
        with ThreadPoolExecutor(1) as pool:
            drawing = pool.submit(draw_piano_roll, notes, out / "together.png", tempo=tempo)
            render_audio(midi, out / "together.ogg", soundfont)
            drawing.result()
        figures["together"].append(time.perf_counter() - start)
    return figures


AUDIO_CHILD = """
import json, logging, sys, time, types
from pathlib import Path
if sys.argv[1] == "system":  # hide the wheel's own libsndfile: soundfile then loads the system's
    hidden = types.ModuleType("_soundfile_data")
    hidden.__file__ = None
    sys.modules["_soundfile_data"] = hidden
import soundfile
from composer.render.audio import find_soundfont, render_audio
found = []
class Grab(logging.Handler):
    def emit(self, record):
        found.append(record.args)
log = logging.getLogger("composer.render.audio")
log.addHandler(Grab())
log.setLevel(logging.INFO)
midi, out = Path(sys.argv[2]), Path(sys.argv[3])
for fmt in ("ogg", "mp3"):
    start = time.perf_counter()
    render_audio(midi, out / f"piece-{sys.argv[1]}.{fmt}", find_soundfont(None), fmt=fmt)
    total = time.perf_counter() - start
    print(json.dumps({"fmt": fmt, "version": soundfile.__libsndfile_version__, "audio": total,
                      "render": found[-1][5], "encode": found[-1][6]}))
"""


def audio_what_if(midi: Path, reps: int, out: Path) -> list[list[str]]:
    """What bounds the audio stage: the encoder's libsndfile, and FluidSynth's options.

    The same MIDI through ``render_audio`` in fresh processes with the libsndfile bundled in the
    ``soundfile`` wheel and with the system's (when there is one), Opus and MP3; then FluidSynth
    alone as the service runs it and with ``synth.cpu-cores=2`` or reverb and chorus off.
    """
    import ctypes.util
    import shutil

    from composer.render.audio import find_soundfont

    rows = []
    libraries = ["wheel"] + (["system"] if ctypes.util.find_library("sndfile") else [])
    for library in libraries:
        runs: dict[str, list[dict[str, float]]] = {"ogg": [], "mp3": []}
        for _ in range(reps):
            done = subprocess.run(
                [sys.executable, "-c", AUDIO_CHILD, library, str(midi), str(out)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            for line in done.stdout.strip().splitlines():
                figures = json.loads(line)
                runs[figures["fmt"]].append(figures)
        for fmt, found in runs.items():
            rows.append(
                [
                    f"render_audio, {fmt}, libsndfile {found[0]['version']} ({library})",
                    f"{median([f['render'] for f in found]):.3f}",
                    f"{median([f['encode'] for f in found]):.3f}",
                    f"{median([f['audio'] for f in found]):.3f}",
                ]
            )
    binary, soundfont = shutil.which("fluidsynth"), find_soundfont(None)
    if binary is None or soundfont is None:
        return rows
    base = [binary, "-ni", "-g", "0.5", "-r", "24000", "-O", "float", "-T", "wav"]
    variants = {
        "FluidSynth alone, as the service runs it": [],
        "FluidSynth alone, -o synth.cpu-cores=2": ["-o", "synth.cpu-cores=2"],
        "FluidSynth alone, chorus off (-C 0; what the service does when no preset sends to it)": [
            "-C",
            "0",
        ],
        "FluidSynth alone, reverb and chorus off (-R 0 -C 0; sounds drier)": ["-R", "0", "-C", "0"],
    }
    for label, extra in variants.items():
        times = []
        for _ in range(reps):
            command = [*base, *extra, "-F", str(out / "alone.wav"), str(soundfont), str(midi)]
            start = time.perf_counter()
            subprocess.run(command, capture_output=True, check=True)
            times.append(time.perf_counter() - start)
        rows.append([label, f"{median(times):.3f}", "", ""])
    return rows


CHILD = """
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
t0 = time.perf_counter()
import composer.service
t1 = time.perf_counter()
from composer.model import artifact
loaded = artifact.load(sys.argv[1])
t2 = time.perf_counter()
from composer.generation.generate import PieceRequest, generate
from composer.model.stepper import Stepper
stepper = Stepper(loaded.config, loaded.weights)
fixed = {"duration": 3, "ioi": 3, "velocity": 3} if loaded.config.arch == "seed" else {}
generate(stepper, [PieceRequest(length=1, seed=0, fixed=fixed)])
t3 = time.perf_counter()
artifact.load(sys.argv[1])
t4 = time.perf_counter()
figures = {"import": t1 - t0, "load": t2 - t1, "first": t3 - t2, "reload": t4 - t3}
figures["tensorflow"] = float("tensorflow" in sys.modules)
print(json.dumps(figures))
"""


def python(code: str, *args: str) -> float:
    """Wall seconds of a fresh interpreter running ``code``, start to exit."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def heaviest_imports(count: int) -> list[tuple[str, float]]:
    """The direct imports of ``composer.service`` that take longest (``-X importtime``), seconds."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import composer.service"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    found = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2][1:].rstrip()  # one space follows the bar; two more per level of nesting
        if name.startswith("  ") and not name.startswith("   "):  # a direct child of composer.service
            found.append((name.strip(), int(parts[1]) / 1e6))
    return sorted(found, key=lambda item: -item[1])[:count]


def cold_start(model: Path, runs: int) -> dict[str, list[float]]:
    """Start-to-exit seconds of the CLI, and the stages of a fresh process, ``runs`` times each."""
    figures: dict[str, list[float]] = {
        k: [] for k in ("cli", "interpreter", "import", "load", "first", "reload", "keras", "tensorflow")
    }
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            command = [sys.executable, "-m", "composer", "compose", "1", "--no-audio", "--no-picture"]
            command += ["--out", tmp, "--model", str(model), "--seed", "1"]
            start = time.perf_counter()
            subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
            figures["cli"].append(time.perf_counter() - start)
        figures["interpreter"].append(python("pass"))
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(model)], cwd=ROOT, check=True, capture_output=True, text=True
        )
        for key, value in json.loads(done.stdout.strip().splitlines()[-1]).items():
            figures[key].append(value)
        figures["keras"].append(
            python("import os, time\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\nimport keras")
            - median(figures["interpreter"])
        )
    return figures


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--length", type=int, default=500, help="events per piece (500)")
    p.add_argument("--runs", type=int, default=10, help="warm pieces timed (10)")
    p.add_argument("--cold-runs", type=int, default=3, help="fresh processes timed (3)")
    args = p.parse_args(argv)
    if args.quick:
        args.length, args.runs, args.cold_runs = 100, 2, 1
    print_header(f"compose {args.length}, end to end (issue 7, item 2)", args.model)
    if not args.model.is_file():
        print(f"no model at {args.model}: train one or pass --model")
        return 1

    with tempfile.TemporaryDirectory() as tmp:
        rows, loaded, first = asyncio.run(warm_runs(args.model, args.length, args.runs, Path(tmp)))
    names = [
        ("generate", "generate"),
        ("midi", "MIDI"),
        ("picture", "picture"),
        ("render", "audio: FluidSynth render"),
        ("encode", "audio: after FluidSynth ends (streaming) or scan + encode (two-pass)"),
        ("audio", "audio (render + encode + checks)"),
        ("total", "total (the service's stages)"),
        ("wall", "wall time of await compose()"),
        ("fluidsynth alone", "FluidSynth alone, same MIDI (`fluidsynth -ni -F out.wav -r 24000`)"),
        ("total / alone", "total / FluidSynth alone (ratio, per piece)"),
    ]
    table = []
    for key, label in names:
        values = [row[key] for row in rows if key in row]
        if values:
            table.append([label, f"{median(values):.3f}", f"{percentile(values, 95):.3f}"])
    events = median([row["events"] for row in rows])
    music = median([row["music seconds"] for row in rows])
    audio_seconds = [row["audio seconds"] for row in rows if "audio seconds" in row]
    print(
        f"## Warm: {args.runs} pieces of compose {args.length}, one after another "
        f"(model loaded first in {loaded:.2f} s and a 20-event piece made in {first:.2f} s, not timed)"
    )
    print(
        f"median {events:.0f} events, {music:.0f} s of music"
        + (
            f", {median(audio_seconds):.0f} s of audio; FluidSynth renders "
            f"{median(audio_seconds) / median([r['render'] for r in rows if 'render' in r]):.0f}x real time"
            if audio_seconds
            else " (no audio: FluidSynth or a SoundFont is missing)"
        )
    )
    print_table(["stage", "median s", "p95 s"], table)

    with tempfile.TemporaryDirectory() as tmp:
        split = what_if(args.model, args.length, max(3, args.runs // 2), Path(tmp))
        midi = Path(tmp) / "what-if-0.mid"
        audio_rows = audio_what_if(midi, 1 if args.quick else 3, Path(tmp)) if midi.is_file() else []
    labels = {
        "key": "detect_key alone (in the service's MIDI stage)",
        "midi": "arrange and write the MIDI alone (in the service's arrange and MIDI stages)",
        "picture": "picture alone",
        "audio": "audio alone",
        "apart": "picture, then audio",
        "together": "picture drawn in a thread while the audio renders (as the service does)",
    }
    print(
        f"## Stages apart, and overlapped (what-if; same {args.length}-event piece, {len(split['key'])} runs)"
    )
    print_table(
        ["what", "median s", "p95 s"],
        [[labels[k], f"{median(v):.3f}", f"{percentile(v, 95):.3f}"] for k, v in split.items() if v],
    )
    if split["apart"] and split["together"]:
        apart, together = median(split["apart"]), median(split["together"])
        print(f"overlapping saves {apart - together:.3f} s a piece ({apart / together:.2f}x)\n")

    if audio_rows:
        print(f"## What bounds the audio stage (same {args.length}-event piece, fresh processes)")
        print_table(["what", "render s", "scan + encode s", "audio total s"], audio_rows)

    cold = cold_start(args.model, args.cold_runs)
    interpreter = median(cold["interpreter"])
    rows_cold = [
        ["`python -m composer compose 1 --no-audio --no-picture`, start to exit", cold["cli"]],
        ["python interpreter start to exit (`python -c pass`)", cold["interpreter"]],
        ["`import composer.service` (fresh process)", cold["import"]],
        [
            "then `artifact.load(model)` ("
            + ("imports TensorFlow" if max(cold["tensorflow"]) else "TensorFlow not imported")
            + ")",
            cold["load"],
        ],
        ["then Stepper + first event generated", cold["first"]],
        ["then `artifact.load` again (imports done)", cold["reload"]],
        ["`import keras` alone (fresh process, interpreter start taken off)", cold["keras"]],
    ]
    first_event = [
        interpreter + i + load + f
        for i, load, f in zip(cold["import"], cold["load"], cold["first"], strict=True)
    ]
    rows_cold.append(["start to first event (interpreter + import + load + first event)", first_event])
    print(f"## Cold start ({args.cold_runs} fresh processes each)")
    print_table(
        ["what", "median s", "max s"],
        [[label, f"{median(v):.2f}", f"{max(v):.2f}"] for label, v in rows_cold],
    )
    print("heaviest direct imports of composer.service (-X importtime, cumulative, one run):")
    print_table(["module", "s"], [[name, f"{seconds:.3f}"] for name, seconds in heaviest_imports(6)])
    print_footer()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
