"""Helpers shared by the benchmark scripts: the machine's description, a contention check, tables.

Not a benchmark itself. Importing it puts the repository root on ``sys.path`` (so the scripts run
as ``python bench/NAME.py`` from anywhere) and keeps TensorFlow's start-up chatter quiet.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DEFAULT_MODEL = ROOT / "models" / "default.cadenza"


def parser(doc: str, model_help: str = "the model (.cadenza)") -> argparse.ArgumentParser:
    """The options every benchmark takes: ``--quick`` for a smoke run and ``--model``."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small settings, for a smoke run")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help=model_help)
    return p


def cpu_model() -> str:
    """The CPU's model name as ``lscpu`` (or ``/proc/cpuinfo``) gives it."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def blas_description() -> str:
    """Which BLAS numpy uses and with how many threads (threadpoolctl when installed)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        import numpy as np

        blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
        return f"{blas.get('name', '?')} {blas.get('version', '')} (threads: unknown)".strip()
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    return (
        ", ".join(
            f"{p['internal_api']} {p['version']} ({p.get('architecture', '?')}, {p['num_threads']} threads)"
            for p in pools
        )
        or "none found"
    )


def machine_lines() -> list[str]:
    """The lines that say what machine and software a run's figures come from."""
    import numpy as np

    return [
        f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"cpu: {cpu_model()}, {os.cpu_count()} logical cores",
        f"python {platform.python_version()}, numpy {np.__version__}, BLAS: {blas_description()}",
    ]


def contention_warnings(model: Path | None = None) -> list[str]:
    """Reasons the figures may be distorted: a training run in progress, a missing model."""
    warnings = []
    busy = subprocess.run(
        ["pgrep", "-f", "python -m training"], capture_output=True, text=True, check=False
    ).stdout.split()
    if busy:
        warnings.append(f"a training run is in progress (pid {', '.join(busy)}): CPU figures are distorted")
    if model is not None and not model.is_file():
        warnings.append(f"no model at {model}")
    load1, _, _ = os.getloadavg()
    if load1 > 0.5:
        warnings.append(f"load average {load1:.2f} before the run: other work shares the CPU")
    return warnings


def _busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (``/proc/stat``)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    """CPU seconds of this process and the children it has waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


_started: tuple[float, float, float] = (time.monotonic(), _busy_seconds(), _own_seconds())


def print_footer() -> None:
    """How much CPU other processes took while this script ran: figures are distorted when high."""
    wall = time.monotonic() - _started[0]
    others = (_busy_seconds() - _started[1]) - (_own_seconds() - _started[2])
    share = others / (wall * (os.cpu_count() or 1))
    print(
        f"other processes used {max(others, 0.0):.0f} CPU-seconds during this {wall:.0f} s run "
        f"({100 * max(share, 0.0):.0f}% of the machine); load average now {os.getloadavg()[0]:.2f}"
    )


def print_header(title: str, model: Path | None = None) -> None:
    """Title, machine and any contention warnings, at the top of a script's output."""
    print(f"# {title}")
    for line in machine_lines():
        print(f"  {line}")
    for warning in contention_warnings(model):
        print(f"  WARNING: {warning}")
    print()


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linearly interpolated between the nearest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    """The median, ``nan`` for no values."""
    return statistics.median(values) if values else float("nan")


def best_of(fn: Callable[[], object], repeats: int, inner: int = 1) -> float:
    """Least seconds one call of ``fn`` took, over ``repeats`` batches of ``inner`` calls."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - start) / inner)
    return best


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A Markdown table (pastes straight into RESULTS.md), columns padded for the terminal."""
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print()
