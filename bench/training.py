"""Issue 7, item 6: training throughput and corpus parsing with and without the cache.

Why: a hobbyist training on this machine wants to know what an epoch costs, and a second run on
unchanged data should not parse again. This measures, in one run:

- parsing: music21's bundled Bach chorales (or the first ``--files``) read into events in
  parallel processes with an empty cache, then again with the cache the first pass wrote
  (files per second, and the ratio);
- training: the bundled model's configuration (2 LSTM layers of 256, batch 64, windows of 64)
  fitted for ``--epochs`` on those pieces; training events per second as the training command
  reports them (real events, not padding; fitting time, validation included).

Run ``python bench/training.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from _common import parser, print_footer, print_header, print_table


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--files", type=int, default=0, help="first N chorales only (0: all)")
    p.add_argument("--epochs", type=int, default=3, help="epochs to fit")
    args = p.parse_args()
    if args.quick:
        args.files, args.epochs = 24, 2
    print_header("Training throughput and parsing", None)
    limit = {"bach": args.files} if args.files else None
    with tempfile.TemporaryDirectory(prefix="cadenza-bench-") as tmp:
        os.environ["CADENZA_CACHE_DIR"] = str(Path(tmp) / "cache")
        from training.sources import collect

        rows = []
        for label in ("empty cache", "cache from the first pass"):
            start = time.perf_counter()
            collected = collect(["bach"], limit=limit)
            seconds = time.perf_counter() - start
            files = len(collected.pieces) + len(collected.failures)
            rows.append([label, files, collected.cached, f"{seconds:.2f}", f"{files / seconds:.1f}"])
        ratio = float(rows[0][3]) / float(rows[1][3])
        print_table(["parsing the Bach chorales", "pieces", "from cache", "seconds", "pieces/s"], rows)
        print(f"cache speed-up: {ratio:.0f}×\n")

        from training.train import TrainOptions, train

        options = TrainOptions(
            out=Path(tmp) / "bench",
            corpus=("bach",),
            epochs=args.epochs,
            max_files=limit or {},
            verbose=0,
            tensorboard=False,
        )
        report = train(options, pieces=collected.pieces)
        t = report.training
        print_table(
            ["training events per epoch", "epochs", "fit seconds", "events/s (the first batch left out)"],
            [[t["events"]["train"], t["epochs_run"], t["seconds"]["fit"], t["events_per_second"]]],
        )
    print_footer()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
