"""Issue 7, item 1: generation speed against the seed's method and against this CPU's limits.

Why: the seed re-ran its network over a 100-event window through ``model.predict`` for every
note; we carry the LSTM state and take one numpy step per event (:mod:`composer.model.stepper`). This
measures, in one run and at the same network size, batch 1:

(a) the seed's method on the seed architecture (``ModelConfig.seed()``, random weights, pitch
    vocabulary as large as the bundled model's): window of 100 through ``model.predict``,
    argmax, window slides; timed on ``--seed-notes`` notes and scaled to ``--events``;
(b) ours on the same network: :class:`composer.model.stepper.Stepper` +
    :func:`composer.generation.generate.generate`;
(c) ours on the bundled model (``--model``).

For each network it also prints the step's floating-point work against what numpy reaches on
this machine (a float32 GEMM rate, the batch-1 matrix-vector rate at the LSTM weight shape, and
the weight bytes read per step over the measured read bandwidth), 16 pieces stepping together,
and BLAS limited to 1 thread against the default, alone and beside a busy core.

Run ``python bench/generation.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import subprocess
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from _common import best_of, median, parser, print_footer, print_header, print_table

if TYPE_CHECKING:
    import keras

    from composer.model.network import ModelConfig
    from composer.model.stepper import Stepper

WINDOW = 100
"""The seed's context: every note re-ran the network over the last 100 events."""


@dataclass
class Work:
    """What one batch-1 step of a network costs: multiply-adds, and the weight bytes it reads."""

    macs: int
    weight_bytes: int
    shapes: list[tuple[int, int]]
    """The weight matrices a step multiplies by (one matrix-vector product each at batch 1)."""

    @property
    def flops(self) -> int:
        return 2 * self.macs


@dataclass
class Limits:
    """Rates numpy reaches on this machine, measured in this run."""

    gemm_gflops: float
    gemm_size: int
    bandwidth_gbs: float


@dataclass
class Network:
    """A network under test: its name, config, stepper and the step's work."""

    name: str
    config: ModelConfig
    stepper: Stepper
    work: Work
    fixed: dict[str, int]
    lstm_shape: tuple[int, int]


def step_work(config: ModelConfig, weights: dict[str, list[np.ndarray]]) -> Work:
    """Count the multiply-adds of one step: LSTM input kernels, recurrent kernels, dense, heads.

    The first layer's input kernel of the ``lstm`` family is folded into the embedding tables
    (the stepper adds five looked-up rows instead), so it costs no multiply-adds there.
    """
    shapes: list[tuple[int, int]] = []
    macs = 0
    extra_bytes = 0
    for i in range(config.layers):
        kernel, recurrent, _bias = weights[f"lstm_{i}"]
        shapes.append(recurrent.shape)
        if i or config.arch == "seed":
            if kernel.shape[0] > 1:
                shapes.append(kernel.shape)
            else:  # the seed's scalar input: one row scaled, not a matrix product
                macs += kernel.size
                extra_bytes += 4 * kernel.size
        else:
            extra_bytes += 4 * 5 * recurrent.shape[1]  # five table rows: the 4 fields and the style
    if "hidden" in weights:
        shapes.append(weights["hidden"][0].shape)
    shapes.extend(weights[f"next_{name}"][0].shape for name in config.heads)
    macs += sum(r * c for r, c in shapes)
    return Work(macs, 4 * sum(r * c for r, c in shapes) + extra_bytes, shapes)


def measure_limits(quick: bool) -> Limits:
    """The float32 GEMM rate numpy reaches here (n x n by n x n) and the best read bandwidth."""
    size = 512 if quick else 1024
    rng = np.random.default_rng(0)
    a = rng.random((size, size), dtype=np.float32)
    b = rng.random((size, size), dtype=np.float32)
    a @ b
    seconds = best_of(lambda: a @ b, 3 if quick else 10)
    gemm = 2 * size**3 / seconds / 1e9
    return Limits(gemm, size, 0.0)


def read_bandwidth(nbytes: int, quick: bool) -> float:
    """GB/s for reading ``nbytes`` of float32 over and over, as a step re-reads its weights.

    The best of three readers: a BLAS dot product, numpy's max (one thread, SIMD) and a BLAS
    matrix-vector product over a matrix of that size (both cores), so the figure is the fastest
    this machine reads that much data, from whichever cache level holds it.
    """
    columns = 1024
    rows = max(1, nbytes // 4 // columns)
    matrix = np.random.default_rng(1).random((rows, columns), dtype=np.float32)
    flat = matrix.reshape(-1)
    vector = np.ones((1, rows), np.float32)
    repeats = 5 if quick else 30
    seconds = min(
        best_of(lambda: flat @ flat, repeats),
        best_of(flat.max, repeats),
        best_of(lambda: vector @ matrix, repeats, inner=5),
    )
    return matrix.nbytes / seconds / 1e9


def matvec_seconds(shapes: list[tuple[int, int]], quick: bool) -> float:
    """Seconds for one batch-1 matrix-vector product with each weight matrix of the list."""
    rng = np.random.default_rng(2)
    mats = [rng.random(shape, dtype=np.float32) - 0.5 for shape in shapes]
    vecs = [rng.random((1, shape[0]), dtype=np.float32) for shape in shapes]

    def sweep() -> None:
        for v, m in zip(vecs, mats, strict=True):
            v @ m

    sweep()
    return best_of(sweep, 10 if quick else 50, inner=5 if quick else 20)


# -- (a) the seed's method -------------------------------------------------------------------------


def seed_keras_model(pitch_vocab: int) -> tuple[ModelConfig, keras.Model]:
    """The seed architecture with random weights (the speed does not depend on their values)."""
    from composer.model.network import ModelConfig, build_model

    config = ModelConfig.seed()
    return config, build_model(config, {"pitch": pitch_vocab}, 1)


def seed_method(model: keras.Model, pitch_vocab: int, notes: int) -> tuple[float, float]:
    """Seconds per note the seed's way, and the first call's seconds (graph building), apart.

    Every note: the whole window through ``model.predict``, argmax of the last position's
    logits, the window slides by one.
    """
    rng = np.random.default_rng(0)
    window = rng.integers(3, pitch_vocab, size=(1, WINDOW)).astype(np.float32)

    def one_note() -> None:
        nonlocal window
        logits = model.predict({"pitch": window}, verbose=0)["next_pitch"]
        chosen = float(np.argmax(logits[0, -1]))
        window = np.concatenate([window[:, 1:], [[chosen]]], axis=1).astype(np.float32)

    start = time.perf_counter()
    one_note()
    first = time.perf_counter() - start
    times = []
    for _ in range(notes):
        start = time.perf_counter()
        one_note()
        times.append(time.perf_counter() - start)
    return median(times), first


# -- (b), (c) ours -----------------------------------------------------------------------------------


def step_seconds(stepper: Stepper, steps: int, batch: int = 1, rounds: int = 3) -> float:
    """Seconds per ``Stepper.step`` alone (no sampling), ``batch`` pieces together.

    The best of ``rounds`` runs of ``steps`` steps, since a virtual machine's noise only adds time.
    """
    state = stepper.initial_state(batch)
    rows = np.full((batch, 4), 3, np.int32)
    styles = np.zeros(batch, np.int64)
    for _ in range(5):
        _, state = stepper.step(rows, styles, state)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(steps):
            _, state = stepper.step(rows, styles, state)
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def generate_seconds(net: Network, events: int, batch: int, reps: int) -> tuple[float, int, int]:
    """Median seconds for ``generate`` of ``batch`` pieces of ``events``; events made, longest piece."""
    from composer.generation.generate import PieceRequest, generate

    times = []
    made = longest = 0
    for rep in range(reps):
        requests = [PieceRequest(length=events, seed=1000 * rep + b, fixed=net.fixed) for b in range(batch)]
        start = time.perf_counter()
        pieces = generate(net.stepper, requests)
        times.append(time.perf_counter() - start)
        made = sum(len(p.rows) for p in pieces)
        longest = max(len(p.rows) for p in pieces)
    return median(times), made, longest


def ours(net: Network, events: int, reps: int) -> tuple[float, float]:
    """(ms per event for ``generate`` at batch 1, ms per step for the step alone)."""
    seconds, made, _ = generate_seconds(net, events, 1, reps)
    return 1e3 * seconds / made, 1e3 * step_seconds(net.stepper, events)


def networks(model_path: Path, pitch_vocab: int) -> tuple[keras.Model, list[Network]]:
    """The seed-size Keras model, and the seed-size and bundled networks as steppers."""
    from composer.model import artifact
    from composer.model.stepper import Stepper, weights_from_keras

    seed_config, seed_model = seed_keras_model(pitch_vocab)
    seed_weights = weights_from_keras(seed_model)
    units = seed_config.units
    nets = [
        Network(
            "seed size",
            seed_config,
            Stepper(seed_config, seed_weights),
            step_work(seed_config, seed_weights),
            {"duration": 3, "ioi": 3, "velocity": 3},
            (units, 4 * units),
        )
    ]
    if model_path.is_file():
        loaded = artifact.load(model_path)
        units = loaded.config.units
        nets.append(
            Network(
                "bundled",
                loaded.config,
                Stepper(loaded.config, loaded.weights),
                step_work(loaded.config, loaded.weights),
                {},
                (units, 4 * units),
            )
        )
    return seed_model, nets


def pitch_vocabulary(model_path: Path) -> int:
    """The bundled model's pitch vocabulary size (ids, markers included), or 3003 without one."""
    if not model_path.is_file():
        return 3003
    from composer.model.artifact import read_document
    from composer.model.vocabulary import Vocabulary

    return Vocabulary.from_dict(read_document(model_path)["vocabulary"]).sizes["pitch"]


def blas_threads(n: int | None) -> AbstractContextManager[object]:
    """A context limiting BLAS to ``n`` threads (``None``: the default)."""
    if n is None:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n, user_api="blas")


def busy_core(seconds: float) -> subprocess.Popen[bytes]:
    """A process that keeps one core busy for at most ``seconds`` (it stops by itself)."""
    code = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass\n"
    return subprocess.Popen([sys.executable, "-c", code])


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "the bundled model (.cadenza)")
    p.add_argument("--events", type=int, default=500, help="events per piece (500)")
    p.add_argument("--seed-notes", type=int, default=20, help="notes timed for the seed's method (20)")
    p.add_argument("--batch", type=int, default=16, help="pieces stepping together (16)")
    p.add_argument("--reps", type=int, default=3, help="repetitions of each generate timing (median)")
    args = p.parse_args(argv)
    if args.quick:
        args.events, args.seed_notes, args.batch, args.reps = 60, 3, 4, 1

    print_header("Generation: the seed's method against ours (issue 7, item 1)", args.model)
    vocab = pitch_vocabulary(args.model)
    seed_model, nets = networks(args.model, vocab)
    if len(nets) == 1:
        print(f"(no model at {args.model}: the bundled network is left out)\n")

    # (a) against (b), (c)
    seed_note, seed_first = seed_method(seed_model, vocab, args.seed_notes)
    rows = [
        [
            "seed size (3x512 LSTM, dense 256)",
            f"seed: window {WINDOW} through model.predict",
            f"{1e3 * seed_note:.1f}",
            f"{seed_note * args.events:.1f}",
            "1",
        ]
    ]
    results = {}
    for net in nets:
        per_event, per_step = ours(net, args.events, args.reps)
        results[net.name] = (per_event, per_step)
        rows.append(
            [
                net.name
                + ("" if net.name == "seed size" else f" ({net.config.layers}x{net.config.units} LSTM)"),
                "ours: Stepper + generate (sampling included)",
                f"{per_event:.3f}",
                f"{per_event * args.events / 1e3:.2f}",
                f"{1e3 * seed_note / per_event:.0f}",
            ]
        )
        rows.append(
            [
                "",
                "ours: Stepper.step alone",
                f"{per_step:.3f}",
                f"{per_step * args.events / 1e3:.2f}",
                f"{1e3 * seed_note / per_step:.0f}",
            ]
        )
    print(
        f"## Batch 1, {args.events} events, pitch vocabulary {vocab} "
        f"(seed's method timed on {args.seed_notes} notes and scaled; its first call, "
        f"{seed_first:.1f} s, left out)"
    )
    print_table(["network", "method", "ms per event", f"{args.events} events (s)", "seed / this"], rows)

    # the CPU's limits
    limits = measure_limits(args.quick)
    rows = []
    for net in nets:
        w = net.work
        bandwidth = read_bandwidth(w.weight_bytes, args.quick)
        gemv = matvec_seconds([net.lstm_shape], args.quick)
        gemv_gflops = 2 * net.lstm_shape[0] * net.lstm_shape[1] / gemv / 1e9
        sweep = matvec_seconds(w.shapes, args.quick)
        compute_ms = 1e3 * w.flops / (limits.gemm_gflops * 1e9)
        gemv_ms = 1e3 * w.flops / (gemv_gflops * 1e9)
        memory_ms = 1e3 * w.weight_bytes / (bandwidth * 1e9)
        per_event, per_step = results[net.name]
        rows.append(
            [
                net.name,
                f"{w.flops / 1e6:.2f}",
                f"{w.weight_bytes / 1e6:.1f}",
                f"{compute_ms:.3f}",
                f"{gemv_ms:.3f} ({gemv_gflops:.0f} GFLOP/s)",
                f"{memory_ms:.3f} ({bandwidth:.0f} GB/s)",
                f"{1e3 * sweep:.3f}",
                f"{per_step:.3f}",
                f"{per_event:.3f}",
                f"{per_step / compute_ms:.1f}x / {per_event / compute_ms:.1f}x",
                f"{per_step / memory_ms:.1f}x / {per_event / memory_ms:.1f}x",
            ]
        )
    print(
        f"## The CPU's limit per step, batch 1 (float32 GEMM {limits.gemm_size}^3: "
        f"{limits.gemm_gflops:.0f} GFLOP/s)"
    )
    print_table(
        [
            "network",
            "MFLOP/step",
            "weights MB",
            "compute limit ms (GEMM rate)",
            "GEMV limit ms (LSTM shape)",
            "memory floor ms (bytes/bandwidth)",
            "matvecs alone ms",
            "ours step ms",
            "ours generate ms/event",
            "ours / compute limit (step / generate)",
            "ours / memory floor (step / generate)",
        ],
        rows,
    )

    # batches
    rows = []
    for net in nets:
        single, single_made, _ = generate_seconds(net, args.events, 1, args.reps)
        total, made, longest = generate_seconds(net, args.events, args.batch, args.reps)
        alone = step_seconds(net.stepper, longest, args.batch)
        rows.append(
            [
                net.name,
                args.batch,
                f"{total:.2f}",
                longest,
                f"{1e3 * total / longest:.2f}",
                f"{1e3 * alone:.2f}",
                f"{1e3 * total / made:.3f}",
                f"{1e3 * single / single_made:.3f}",
                f"{args.batch * single / total:.1f}",
            ]
        )
    print(
        f"## {args.batch} pieces of {args.events} events stepping together "
        f"(generate with {args.batch} requests)"
    )
    print_table(
        [
            "network",
            "pieces",
            "total s",
            "steps",
            "ms per step",
            "of which Stepper.step ms",
            "ms per event per piece",
            "batch 1 ms/event",
            f"speed-up over {args.batch} pieces one after another",
        ],
        rows,
    )

    # BLAS threads, alone and beside a busy core
    steps = max(50, args.events)
    rows = []
    for contention in (False, True):
        busy = busy_core(120) if contention else None
        try:
            if busy is not None:
                time.sleep(0.2)
            for net in nets:
                for threads in (None, 1):
                    with blas_threads(threads):
                        per_step = step_seconds(net.stepper, steps)
                        seconds, made, _ = generate_seconds(net, args.events, 1, 1)
                    rows.append(
                        [
                            net.name,
                            "default" if threads is None else threads,
                            "one core busy" if contention else "none",
                            f"{1e3 * per_step:.3f}",
                            f"{1e3 * seconds / made:.3f}",
                        ]
                    )
        finally:
            if busy is not None:
                busy.terminate()
                busy.wait()
    print("## BLAS threads (threadpoolctl), batch 1, alone and beside a process that keeps one core busy")
    print_table(["network", "BLAS threads", "contention", "step ms", "generate ms/event"], rows)
    print_footer()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
