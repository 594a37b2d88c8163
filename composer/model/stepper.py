"""One recurrent step at a time, in numpy, with the trained network's own weights.

The network is trained on whole sequences; generation only ever needs the next event, so it
carries the LSTM state and runs one step per event instead of re-running a window (the seed's
way: 100 steps of work per note). The step is plain numpy: no graph, no framework overhead,
and a batch of pieces steps together. The first layer's input projection is folded into the
embedding tables once (``table @ kernel``), so feeding an event is a few row lookups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from composer.model.network import ModelConfig, move_logits
from composer.model.vocabulary import FIELDS

if TYPE_CHECKING:
    import keras


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


def _cell(z: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM step from the gates' summed inputs ``z`` (Keras' order: input, forget, cell,
    output) and the cell state before: the new hidden and cell states."""
    i, f, g, o = np.split(z, 4, axis=1)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c), c


@dataclass
class State:
    """Hidden and cell state of every LSTM layer, each shaped ``(batch, units)``."""

    h: list[np.ndarray]
    c: list[np.ndarray]

    @classmethod
    def stack(cls, states: list[State]) -> State:
        """Join single-piece states into one batch."""
        layers = range(len(states[0].h))
        return cls(
            [np.concatenate([s.h[i] for s in states]) for i in layers],
            [np.concatenate([s.c[i] for s in states]) for i in layers],
        )

    def select(self, rows: list[int]) -> State:
        """The state of some pieces of the batch only (those still being generated)."""
        return State([h[rows] for h in self.h], [c[rows] for c in self.c])


class Stepper:
    """Runs the network one event at a time for a batch of pieces."""

    def __init__(self, config: ModelConfig, weights: dict[str, list[np.ndarray]]) -> None:
        self.config = config
        self.heads = config.heads
        first_kernel, first_recurrent, first_bias = weights["lstm_0"]
        self.units = first_recurrent.shape[0]
        if config.arch == "seed":
            self._pitch_scale = 1.0 / weights["next_pitch"][1].shape[0]
            self._scalar_kernel = first_kernel[0].astype(np.float32)
            self._tables = {}
        else:
            # Fold the input kernel into each embedding: row i of the table is embed[i] @ kernel slice.
            self._tables, offset = {}, 0
            for name in (*FIELDS, "style"):
                (table,) = weights[f"embed_{name}"]
                width = table.shape[1]
                self._tables[name] = (table @ first_kernel[offset : offset + width]).astype(np.float32)
                offset += width
        self._recurrent = [first_recurrent.astype(np.float32)]
        self._bias = [first_bias.astype(np.float32)]
        self._kernels: list[np.ndarray] = []
        for i in range(1, config.layers):
            kernel, recurrent, bias = weights[f"lstm_{i}"]
            self._kernels.append(kernel.astype(np.float32))
            self._recurrent.append(recurrent.astype(np.float32))
            self._bias.append(bias.astype(np.float32))
        self._hidden = [w.astype(np.float32) for w in weights["hidden"]] if "hidden" in weights else None
        self._moves = None
        if config.line_moves:
            kernel, bias = weights["moves"]
            (outlines,) = weights["line_moves"]
            self._moves = (kernel.astype(np.float32), bias.astype(np.float32), outlines.astype(np.int64))
        self._heads: dict[str, list[np.ndarray]] = {}
        self._given: dict[str, dict[str, np.ndarray]] = {}
        for name in self.heads:
            kernel, bias = weights[f"next_{name}"]
            width = kernel.shape[0] - sum(weights[f"embed_{f}"][0].shape[1] for f in config.conditions(name))
            self._heads[name] = [kernel[:width].astype(np.float32), bias.astype(np.float32)]
            # A chained head's kernel rows for each field it sees, folded into that field's table.
            self._given[name], offset = {}, width
            for field in config.conditions(name):
                (table,) = weights[f"embed_{field}"]
                rows = kernel[offset : offset + table.shape[1]]
                self._given[name][field] = (table @ rows).astype(np.float32)
                offset += table.shape[1]

    def initial_state(self, batch: int = 1) -> State:
        """All-zero state, as the network starts every training sequence."""
        zeros = [np.zeros((batch, self.units), np.float32) for _ in range(self.config.layers)]
        return State(zeros, [z.copy() for z in zeros])

    def step(self, rows: np.ndarray, styles: np.ndarray, state: State) -> tuple[dict[str, np.ndarray], State]:
        """Feed one event per piece (``rows``: ``(batch, 4)`` ids) and get next-event logits per field
        (for chained heads, the part that does not depend on the other fields: see :meth:`condition`)."""
        rows = np.asarray(rows).reshape(-1, 4)
        x = self._inputs(rows, styles)
        hs, cs = [], []
        for layer in range(self.config.layers):
            if layer:
                x = x @ self._kernels[layer - 1]
            z = x + state.h[layer] @ self._recurrent[layer] + self._bias[layer]
            h, c = _cell(z, state.c[layer])
            hs.append(h)
            cs.append(c)
            x = h
        if self._hidden is not None:
            x = x @ self._hidden[0] + self._hidden[1]
            if self.config.arch != "seed":
                x = np.maximum(x, 0.0)
        logits = {name: x @ w + b for name, (w, b) in self._heads.items()}
        if self._moves is not None:
            kernel, bias, outlines = self._moves
            logits["pitch"] = logits["pitch"] + move_logits(x @ kernel + bias, outlines, rows[:, 0])
        return logits, State(hs, cs)

    def feed(self, rows: np.ndarray, style: int, state: State) -> tuple[dict[str, np.ndarray], State]:
        """Feed a run of events of one piece (a primer, ``rows``: ``(events, 4)`` ids) and get the
        logits after the last, as :meth:`step` row by row would.

        Faster than that by far: each layer's input is projected for every event in one matrix
        product, and the heads (the chord head's thousands of outputs above all) run only after
        the last event, since nothing needs the logits in between.
        """
        rows = np.asarray(rows).reshape(-1, 4)
        if len(rows) > 1:
            x = self._inputs(rows[:-1], np.full(len(rows) - 1, style))
            hs, cs = [], []
            for layer in range(self.config.layers):
                if layer:
                    x = x @ self._kernels[layer - 1]
                x = x + self._bias[layer]
                h, c, out = state.h[layer], state.c[layer], np.empty((len(x), self.units), np.float32)
                for t in range(len(x)):
                    h, c = _cell(x[t : t + 1] + h @ self._recurrent[layer], c)
                    out[t] = h[0]
                hs.append(h)
                cs.append(c)
                x = out
            state = State(hs, cs)
        return self.step(rows[-1:], np.array([style]), state)

    def _inputs(self, rows: np.ndarray, styles: np.ndarray) -> np.ndarray:
        """The first LSTM layer's input projection of each row (the embeddings folded in)."""
        if self.config.arch == "seed":
            return rows[:, :1].astype(np.float32) * self._pitch_scale * self._scalar_kernel
        x = self._tables["style"][np.asarray(styles)]
        for i, name in enumerate(FIELDS):
            x = x + self._tables[name][rows[:, i]]
        return x

    def condition(self, name: str, logits: np.ndarray, chosen: dict[str, np.ndarray]) -> np.ndarray:
        """``name``'s logits from :meth:`step` completed with the fields of the same event already
        chosen (``chosen``: ids per field, one per row); unchanged for independent heads."""
        for field, table in self._given[name].items():
            logits = logits + table[chosen[field]]
        return logits


def weights_from_keras(model: keras.Model) -> dict[str, list[np.ndarray]]:
    """The weights the stepper needs, by layer name, from a built Keras model."""
    return {layer.name: layer.get_weights() for layer in model.layers if layer.get_weights()}
