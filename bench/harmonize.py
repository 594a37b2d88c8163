"""Harmonization: one sample against candidates ranked by the network's likelihood and a beam search.

Why: :func:`composer.harmonize.harmonize` draws ``candidates`` harmonizations and keeps the one the
network finds likeliest. This measures, on chorales the bundled model never trained on (its
held-out pieces that music21's corpus has), with Bach's soprano as the melody and its fermatas as
the phrase ends, for 1, 4 and 16 candidates at the harmonization's temperature and at a new
piece's, and a few seeds:

- the network's log-likelihood per melody note of the kept harmonization (what the ranking
  maximises; higher is likelier);
- how often the kept harmonization agrees with Bach's own at the melody's onsets: the same bass
  pitch class, and the same set of pitch classes sounding (a measure the ranking does not see);
- the same for a beam search of width 4 and 16 (deterministic: the seeds give the same result);
- the time to harmonize a 32-note melody (best of 3) with 1 and with the default 8 candidates.

Run ``python bench/harmonize.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from _common import parser, print_footer, print_header, print_table
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parent.parent
CANDIDATES = (1, 4, 16)
BEAMS = (4, 16)


def sounding(notes: list[tuple[float, float, int]], at: float) -> list[int]:
    """Pitches of ``(onset, end, pitch)`` notes sounding at ``at``."""
    return sorted(p for on, end, p in notes if on <= at + 1e-6 and at < end - 1e-6)


def main() -> None:
    """Run the comparison and print its tables."""
    args = parser(__doc__).parse_args()
    from music21 import corpus

    from composer import artifact
    from composer.harmonize import DEFAULT_CANDIDATES, HARMONY_TEMPERATURE, Melody, harmonize
    from composer.harmonize.melody import melody_from_score
    from composer.midi.streams import score_from_stream
    from composer.sampling import DEFAULT_TEMPERATURE
    from composer.stepper import Stepper

    model_path = args.model or REPO / "models" / "default.cadenza"
    print_header("Harmonization: candidates ranked by likelihood against one sample", model_path)
    model = artifact.load(model_path)
    stepper = Stepper(model.config, model.weights)
    threadpool_limits(1, user_api="blas")  # as the composer runs it (composer.service.Composer.load)
    held_out = [n for n in model.training["validation_pieces"] if n.startswith("bwv")]
    chorales = []
    for name in held_out:
        try:
            parsed = corpus.parse(f"bach/{name}")
        except Exception:
            continue
        if len(parsed.parts) != 4:
            continue
        score = score_from_stream(parsed, name)
        soprano = [n for n in score.notes if n.part == 0]
        if not 16 <= len(soprano) <= 80:
            continue
        melody = melody_from_score(score.__class__(tuple(soprano), metadata=score.metadata))
        lower = [(n.start, n.end, n.pitch) for n in score.notes if n.part != 0]
        chorales.append((name, melody, lower))
        if len(chorales) == (2 if args.quick else 8):
            break
    seeds = range(1 if args.quick else 3)
    print(f"chorales: {', '.join(name for name, _, _ in chorales)}; seeds {list(seeds)}\n")

    rows = []
    settings = [(t, c, 0) for t in (HARMONY_TEMPERATURE, DEFAULT_TEMPERATURE) for c in CANDIDATES]
    settings += [(HARMONY_TEMPERATURE, 1, width) for width in BEAMS]
    for temperature, count, width in settings:
        likelihoods, bass, chords, seconds = [], [], [], []
        for _name, melody, lower in chorales:
            for seed in seeds:
                started = time.perf_counter()
                result = harmonize(
                    stepper,
                    model.vocabulary,
                    melody,
                    seed=seed,
                    candidates=count,
                    temperature=temperature,
                    beam=width,
                )
                seconds.append(time.perf_counter() - started)
                likelihoods.append(result.log_likelihood)
                ours = [(n.onset, n.end, n.pitch) for voice in result.voices for n in voice]
                for note in melody.notes:
                    theirs, mine = sounding(lower, note.onset), sounding(ours, note.onset)
                    if theirs and mine:
                        bass.append(theirs[0] % 12 == mine[0] % 12)
                        chords.append({p % 12 for p in theirs} == {p % 12 for p in mine})
        rows.append(
            [
                "-" if width else f"{temperature:g}",
                f"beam of {width}" if width else f"{count} drawn",
                f"{np.mean(likelihoods):.3f}",
                f"{100 * np.mean(bass):.1f}%",
                f"{100 * np.mean(chords):.1f}%",
                f"{np.median(seconds):.2f}",
            ]
        )
    print_table(
        ["temperature", "search", "log-likelihood / note", "bass as Bach's", "chord as Bach's", "median s"],
        rows,
    )

    tune = [67, 67, 74, 74, 76, 76, 74, 72, 72, 71, 71, 69, 69, 67, 74, 74]
    notes = [(float(i), 1.0, p) for i, p in enumerate(tune + tune)]
    melody = Melody.from_notes(notes)
    print(f"\n32-note melody ({len(melody.notes)} quarter notes), best of 3:")
    timing = []
    for count in (1, DEFAULT_CANDIDATES):
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            harmonize(stepper, model.vocabulary, melody, seed=1, candidates=count)
            best = min(best, time.perf_counter() - started)
        timing.append([str(count), f"{best:.2f}"])
    print_table(["candidates", "seconds"], timing)
    print_footer()


if __name__ == "__main__":
    main()
