"""Continuing real-world-shaped MIDI files: which come back exact, and where the time goes.

Every file of the test corpus (tempo ramps, pedal, twelve channels on one track, odd resolutions,
SMPTE, running status... made by ``tests/midi_corpus.py``) and every MIDI file music21 ships for
its tests is continued by 50 events with the bundled model, MIDI only. The output is checked with
mido, not with Cadenza's reader: every message of the user's file at its tick on its track, the
file's resolution, the new part after the last original note. Then the time of one continuation
splits into reading, generating, arranging and writing (median over the files, model warm).

    python bench/continuation.py [--quick] [--model M]
"""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path

from _common import median, parser, percentile, print_footer, print_header, print_table


def exact(before: bytes, after: bytes) -> bool:
    """Whether ``after`` holds every message of ``before`` at its tick on its track (mido's view)."""
    import mido

    old, new = (mido.MidiFile(file=io.BytesIO(data)) for data in (before, after))
    if new.ticks_per_beat != old.ticks_per_beat or len(new.tracks) != len(old.tracks) + 1:
        return False

    def timeline(track: mido.MidiTrack) -> list[tuple[int, object]]:
        tick, out = 0, []
        for msg in track:
            tick += msg.time
            if msg.type != "end_of_track":
                out.append((tick, msg.copy(time=0)))
        return out

    if any(timeline(a) != timeline(b) for a, b in zip(old.tracks, new.tracks, strict=False)):
        return False
    last_old = max(
        t for track in old.tracks for t, m in timeline(track) if m.type == "note_on" and m.velocity
    )
    added = [t for t, m in timeline(new.tracks[-1]) if m.type == "note_on" and m.velocity]
    return bool(added) and min(added) > last_old


def main() -> None:
    args = parser(__doc__).parse_args()
    import music21

    from composer.service import Composer, ComposeRequest
    from composer.settings import ComposerSettings
    from tests.midi_corpus import CORPUS

    files = {name: build() for name, build in CORPUS.items()}
    m21 = sorted((Path(music21.__file__).parent / "midi" / "testPrimitive").glob("test*.mid"))
    files.update({f"music21 {p.name}": p.read_bytes() for p in m21})
    if args.quick:
        files = dict(list(files.items())[:4])

    print_header("Continuations of real-world-shaped MIDI files (50 events, MIDI only)", args.model)
    composer = Composer(ComposerSettings(model=args.model), workers=1)
    composer.load()
    rows, stages = [], {"read": [], "generate": [], "arrange": [], "midi": [], "total": []}
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            request = ComposeRequest(
                length=50, seed=1, primer=data, primer_name=name, audio=False, picture=False
            )
            piece = composer.compose_sync(request, Path(tmp) / name.replace(" ", "-"))
            ok = exact(data, piece.midi.read_bytes())
            rows.append([name, f"{len(data):,}", "yes" if ok else "NO", f"{piece.seconds:.1f}"])
            for stage, values in stages.items():
                values.append(piece.timings.get(stage, 0.0))
        real = _real_pieces(2 if args.quick else None)
        walls = {}
        for name, paths in real.items():
            walls[name] = []
            for i, path in enumerate(paths):
                request = ComposeRequest(length=50, seed=i, primer=path, audio=False, picture=False)
                started = time.perf_counter()
                composer.compose_sync(request, Path(tmp) / f"{name}-{i}")
                walls[name].append(time.perf_counter() - started)
    composer.close()
    print_table(["file", "bytes", "exact", "seconds of music"], rows)
    kept = sum(row[2] == "yes" for row in rows)
    print(f"\n{kept} of {len(rows)} files come back exact.\n")
    print("## Where a 50-event continuation's time goes (model warm)")
    print_table(
        ["stage", "median ms", "p95 ms"],
        [
            [stage, f"{median(values) * 1000:.1f}", f"{percentile(values, 95) * 1000:.1f}"]
            for stage, values in stages.items()
        ],
    )
    print("\n## Real pieces: a 50-event continuation, request to MIDI file (wall clock, model warm)")
    print_table(
        ["set", "pieces", "median ms", "p95 ms"],
        [
            [name, len(values), f"{median(values) * 1000:.0f}", f"{percentile(values, 95) * 1000:.0f}"]
            for name, values in walls.items()
            if values
        ],
    )
    print_footer()


def _real_pieces(limit: int | None) -> dict[str, list[Path]]:
    """music21's keyboard pieces and Freedoom's tracks (where the freedoom package is installed):
    long primers, whose feeding and chord mapping the test corpus's short files hardly exercise."""
    from training.sources import corpus_files

    found = {}
    for name in ("keyboard", "freedoom"):
        try:
            found[name] = corpus_files(name)[:limit]
        except ValueError as error:  # no freedoom package: its row is left out
            print(f"({name} left out: {error})")
    return found


if __name__ == "__main__":
    main()
