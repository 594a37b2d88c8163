"""Micro-batching: every piece in flight, from any request, steps through the network together.

A lone piece costs one network step per event, and that step is mostly reading the weights; a
batch of sixteen reads them once and costs little more. So the composer does not generate each
request on its own thread: the worker threads warm their piece up (feed its primer) and hand it
to :class:`Batcher`, whose single thread steps all pieces in flight as one batch. Pieces join
between steps and leave as soon as they end, so a short piece never waits for a long one.

Every piece draws from its own seeded generator and every batched operation works row by row, so
a piece is the same whether it was generated alone or beside others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from composer.generation.generate import Generated, PieceRequest, Progress, advance, warm_ups
from composer.model.stepper import State, Stepper

log = logging.getLogger(__name__)


@dataclass
class _Joining:
    """A warmed-up piece waiting for the next step."""

    progress: Progress
    logits: dict[str, np.ndarray]
    state: State
    future: Future = field(default_factory=Future)


class Batcher:
    """Generates pieces for many callers at once on one thread, one batched network step per event.

    At most ``max_batch`` pieces step together (``COMPOSER_BATCH``); more wait for a place.
    """

    def __init__(self, stepper: Stepper, max_batch: int = 64) -> None:
        self.stepper = stepper
        self.max_batch = max_batch
        self._joining: list[_Joining] = []
        self._wake = threading.Condition()
        self._closed = False
        self.largest_batch = 0
        """The most pieces that ever stepped together (for benchmarks and logs)."""
        self._thread = threading.Thread(target=self._run, name="composer-batcher", daemon=True)
        self._thread.start()

    def submit(self, request: PieceRequest) -> Future[Generated]:
        """Start generating one piece; the future resolves when it is done."""
        return self.submit_all([request])[0]

    def submit_all(self, requests: Sequence[PieceRequest]) -> list[Future[Generated]]:
        """Start generating several pieces (a request's candidates); each future resolves when
        its piece is done.

        The primers are fed here, on the caller's thread, so a long primer does not hold up the
        pieces already stepping, and a primer the pieces share is fed once for all of them.
        """
        joining = [
            _Joining(Progress(request), logits, state)
            for request, (logits, state) in zip(requests, warm_ups(self.stepper, requests), strict=True)
        ]
        with self._wake:
            if self._closed:
                raise RuntimeError("the composer is closed")
            self._joining += joining
            self._wake.notify()
        return [j.future for j in joining]

    def generate(self, request: PieceRequest) -> Generated:
        """Generate one piece, blocking the calling thread until it is done."""
        return self.submit(request).result()

    def close(self) -> None:
        """Finish the pieces in flight, then stop the thread."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join()

    def _run(self) -> None:
        pieces: list[_Joining] = []
        logits: dict[str, np.ndarray] = {}
        state: State | None = None
        while True:
            with self._wake:
                while not pieces and not self._joining and not self._closed:
                    self._wake.wait()
                if not pieces and not self._joining:
                    return  # closed and idle
                room = self.max_batch - len(pieces)
                new, self._joining = self._joining[:room], self._joining[room:]
            if new:
                logits_names = self.stepper.heads
                parts = ([(logits, state)] if pieces else []) + [(j.logits, j.state) for j in new]
                logits = {name: np.concatenate([got[name] for got, _ in parts]) for name in logits_names}
                state = State.stack([held for _, held in parts])
                pieces += new
                self.largest_batch = max(self.largest_batch, len(pieces))
            try:
                stepped = self._step(pieces, logits, state)
            except Exception as error:  # a bug here must fail the callers, not hang them
                log.exception("generation failed")
                for j in pieces:
                    if not j.future.done():
                        j.future.set_exception(error)
                pieces = []
                continue
            pieces = [j for j in pieces if not j.future.done()]
            if stepped is not None:
                logits, state = stepped
            time.sleep(0)  # let other threads (the bot's event loop above all) have the GIL now

    def _step(
        self, pieces: list[_Joining], logits: dict[str, np.ndarray], state: State
    ) -> tuple[dict[str, np.ndarray], State] | None:
        """Choose every piece's next event, hand back finished pieces, and step the rest once."""
        advance([j.progress for j in pieces], logits, self.stepper)
        keep = [b for b, j in enumerate(pieces) if not j.progress.done]
        for j in pieces:
            if j.progress.done:
                j.future.set_result(j.progress.result())
        if not keep:
            return None
        if len(keep) < len(pieces):
            state = state.select(keep)
        rows = np.stack([pieces[b].progress.last_row for b in keep])
        styles = np.array([pieces[b].progress.request.style for b in keep])
        return self.stepper.step(rows, styles, state)
