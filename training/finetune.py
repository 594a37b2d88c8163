"""Fine-tuning: start from a trained model and go on training on a user's own folder.

A folder of a hundred pieces is too little to learn music from scratch (the network learns what
notes sound like before it learns a style), but plenty to move a model that already knows. The
base model's vocabulary is extended with the pitch sets, durations and gaps of the new pieces
(and their style); every weight of the base is carried over, a new value starting from the
weights of its nearest known value, so the extended network begins exactly where the base
stopped and training refines it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from composer.events import Event
from composer.model.artifact import Artifact
from composer.model.vocabulary import FIELDS, MARKERS, Vocabulary

if TYPE_CHECKING:
    import keras


def extended_vocabulary(
    base: Vocabulary, pieces: Iterable[Sequence[Event]], styles: Sequence[str], max_new_pitch_sets: int
) -> Vocabulary:
    """``base`` plus the most frequent new pitch sets (at most ``max_new_pitch_sets``), durations,
    gaps and styles of ``pieces``."""
    chords: Counter = Counter()
    durations, iois = set(base.durations), set(base.iois)
    known = set(base.pitch_sets)
    for events in pieces:
        for e in events:
            if e.pitches not in known:
                chords[e.pitches] += 1
            durations.add(e.duration)
            iois.add(e.ioi)
    added = [c for c, _ in chords.most_common(max_new_pitch_sets)]
    return Vocabulary(
        pitch_sets=tuple(sorted(known | set(added))),
        durations=tuple(sorted(durations)),
        iois=tuple(sorted(iois)),
        velocities=base.velocities,
        styles=(*base.styles, *(s for s in styles if s not in base.styles)),
    )


def id_map(base: Vocabulary, extended: Vocabulary) -> dict[str, np.ndarray]:
    """For each field, the base id that each id of ``extended`` starts from (itself or the nearest)."""
    values = {
        "pitch": extended.pitch_sets,
        "duration": extended.durations,
        "ioi": extended.iois,
        "velocity": extended.velocities,
    }
    found = {}
    for name in FIELDS:
        nearest = [base.nearest(name, v) for v in values[name]]
        found[name] = np.array([*range(MARKERS), *nearest], dtype=np.int64)
    return found


def transplant(base: Artifact, extended: Vocabulary, model: keras.Model) -> None:
    """Set ``model``'s weights (a network of ``base``'s shape for ``extended``) from ``base``."""
    if base.config.arch == "seed":
        raise ValueError("the seed network cannot be fine-tuned; train an lstm model instead")
    mapping = id_map(base.vocabulary, extended)
    old_styles = len(base.vocabulary.styles)
    for layer in model.layers:
        old = base.weights.get(layer.name)
        if not old or layer.name == "line_moves":  # the outlines are the extended vocabulary's own
            continue
        name = layer.name.split("_", 1)[1] if "_" in layer.name else ""
        if layer.name == "embed_style":
            (table,) = old
            extra = np.repeat(table.mean(axis=0, keepdims=True), len(extended.styles) - old_styles, axis=0)
            layer.set_weights([np.concatenate([table, extra])])
        elif layer.name.startswith("embed_") and name in mapping:
            layer.set_weights([old[0][mapping[name]]])
        elif layer.name.startswith("next_") and name in mapping:
            kernel, bias = old
            layer.set_weights([kernel[:, mapping[name]], bias[mapping[name]]])
        else:
            layer.set_weights(old)
