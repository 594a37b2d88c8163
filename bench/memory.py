"""Issue 7, item 5: resident memory of a composer process over many compositions in a row.

Why: the bot composes for days in one process; its resident size must level off, not grow with
every piece (target: after 50 compositions within 10% of after 5). This reads ``VmRSS`` from
``/proc/self/status`` after start, after loading the model, then after every composition
(``--length`` events, audio and picture on, one after another through ``Composer.compose_sync``),
and prints the figures after 5 and after ``--count`` pieces with their ratio, and the trend.
FluidSynth runs in its own process, so its memory is not counted here.

Run ``python bench/memory.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _common import parser, print_footer, print_header, print_table


def status_mb(field: str = "VmRSS") -> float:
    """A memory figure of this process from ``/proc/self/status``, in MB (10^6 bytes)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"no {field} in /proc/self/status")


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--length", type=int, default=200, help="events per piece (200)")
    p.add_argument("--count", type=int, default=50, help="pieces in a row (50)")
    args = p.parse_args(argv)
    if args.quick:
        args.length, args.count = 50, 8
    print_header(f"Memory over {args.count} compositions of {args.length} (issue 7, item 5)", args.model)
    if not args.model.is_file():
        print(f"no model at {args.model}: train one or pass --model")
        return 1

    start_mb = status_mb()
    from composer.service import Composer, ComposeRequest
    from composer.settings import ComposerSettings

    imported_mb = status_mb()
    composer = Composer(ComposerSettings(model=args.model), workers=1)
    composer.load()
    loaded_mb = status_mb()
    after: dict[int, float] = {}
    audio = 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(1, args.count + 1):
            piece = composer.compose_sync(ComposeRequest(length=args.length, seed=n), Path(tmp) / str(n))
            audio += piece.audio is not None
            after[n] = status_mb()
    seconds = time.perf_counter() - started
    composer.close()

    print(
        f"{args.count} pieces in {seconds:.0f} s, {audio} with audio; "
        f"peak resident size (VmHWM) {status_mb('VmHWM'):.0f} MB"
    )
    rows = [
        ["after start (interpreter and the bench helpers)", f"{start_mb:.0f}"],
        ["after `import composer.service`", f"{imported_mb:.0f}"],
        ["after loading the model", f"{loaded_mb:.0f}"],
    ]
    five = after[min(5, args.count)]
    rows.append([f"after {min(5, args.count)} compositions", f"{five:.0f}"])
    rows.append([f"after {args.count} compositions", f"{after[args.count]:.0f}"])
    print_table(["resident memory (VmRSS)", "MB"], rows)
    print(f"ratio after {args.count} / after 5: {after[args.count] / five:.3f} (target at most 1.10)\n")
    step = max(1, args.count // 10)
    trend = [[n, f"{after[n]:.0f}"] for n in range(step, args.count + 1, step)]
    print("trend:")
    print_table(["compositions", "VmRSS MB"], trend)
    print_footer()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
