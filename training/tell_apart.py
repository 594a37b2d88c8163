"""Can a classifier tell generated pieces from the real music of their style?

Averages such as scale consistency can be met by pieces that still sound wrong; a classifier
trained to separate real pieces from generated ones finds whatever gives them away. Each piece
becomes a vector of key-free, tempo-free features (:func:`features`); two different classifiers
(a regularised logistic regression and a random forest, from scikit-learn) are cross-validated
on real against generated, with equal numbers of each. 0.5 is chance: the pieces pass.
The features that differ most (by effect size) say what to fix.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from composer.events import TICKS_PER_QUARTER, Event
from composer.keys import pitch_class_histogram

INTERVAL_BINS = (("unison", 0, 0), ("step", 1, 2), ("third", 3, 4), ("4th-5th", 5, 7), ("6th-7th", 8, 11))
INTERVAL_BINS += (("octave", 12, 12), ("beyond octave", 13, 127))
TIME_BINS = (("≤ 16th", 0, 3), ("8th", 4, 6), ("dotted 8th", 7, 9), ("quarter", 10, 12), ("≤ half", 13, 24))
TIME_BINS += (("longer", 25, 10_000),)
CLASSIFIERS = ("logistic regression", "random forest")


def features(events: Sequence[Event]) -> dict[str, float]:
    """Key-free, tempo-free figures of one piece: what its melody, rhythm and texture are like."""
    found: dict[str, float] = {}
    histogram = pitch_class_histogram(events)
    if histogram.any():
        rotated = np.roll(histogram, -int(histogram.argmax())) / histogram.sum()
    else:
        rotated = np.zeros(12)
    found.update({f"pitch class +{i}": float(v) for i, v in enumerate(rotated)})
    for line, pick in (("top", max), ("bass", min)):
        moves = [abs(pick(b.pitches) - pick(a.pitches)) for a, b in itertools.pairwise(events)]
        for name, low, high in INTERVAL_BINS:
            found[f"{line} line: {name}"] = _share(moves, low, high)
        found[f"{line} line: mean move"] = float(np.mean(moves)) if moves else 0.0
    iois = [e.ioi for e in events[:-1]]
    durations = [e.duration for e in events]
    for name, low, high in TIME_BINS:
        found[f"onset gap: {name}"] = _share(iois, low, high)
        found[f"duration: {name}"] = _share(durations, low, high)
    sizes = [len(e.pitches) for e in events]
    found["notes per onset"] = float(np.mean(sizes)) if sizes else 0.0
    for size in (1, 2, 3, 4):
        found[f"onsets of {size} notes"] = _share(sizes, size, size)
    found["rests"] = float(np.mean([e.ioi > e.duration for e in events[:-1]])) if len(events) > 1 else 0.0
    pitches = [p for e in events for p in e.pitches]
    if pitches:
        low, high = np.percentile(pitches, [5, 95])
        found["range (5th-95th percentile)"] = float(high - low)
    else:
        found["range (5th-95th percentile)"] = 0.0
    found["beats per onset"] = float(np.mean(iois)) / TICKS_PER_QUARTER if iois else 0.0
    return found


def _share(values: Sequence[int], low: int, high: int) -> float:
    """The share of ``values`` from ``low`` to ``high``, inclusive (0 for none)."""
    if not values:
        return 0.0
    return sum(low <= v <= high for v in values) / len(values)


def tell_apart(
    real: Sequence[Sequence[Event]], made: Sequence[Sequence[Event]], seed: int = 0, folds: int = 5
) -> dict:
    """Cross-validated accuracy of each classifier at telling ``made`` from ``real`` pieces, and
    the features that differ most between them (Cohen's d, largest first)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    count = min(len(real), len(made))
    if count < folds:
        raise ValueError(f"telling apart needs at least {folds} real and {folds} generated pieces")
    rows = [features(p) for p in (*real[:count], *made[:count])]
    names = list(rows[0])
    x = np.array([[row[n] for n in names] for row in rows])
    y = np.array([0] * count + [1] * count)
    models = {
        "logistic regression": make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)),
        "random forest": RandomForestClassifier(n_estimators=200, min_samples_leaf=2, random_state=seed),
    }
    splits = RepeatedStratifiedKFold(n_splits=folds, n_repeats=3, random_state=seed)
    accuracy = {}
    for name, model in models.items():
        scores = cross_val_score(model, x, y, cv=splits, scoring="accuracy")
        accuracy[name] = {"mean": float(scores.mean()), "std": float(scores.std())}
    real_x, made_x = x[y == 0], x[y == 1]
    spread = np.sqrt((real_x.var(axis=0) + made_x.var(axis=0)) / 2)
    effect = np.where(
        spread > 0, (made_x.mean(axis=0) - real_x.mean(axis=0)) / np.maximum(spread, 1e-12), 0.0
    )
    order = np.argsort(-np.abs(effect))
    telling = [
        {
            "feature": names[i],
            "real": float(real_x[:, i].mean()),
            "generated": float(made_x[:, i].mean()),
            "effect": float(effect[i]),
        }
        for i in order[:8]
    ]
    return {"pieces": count, "accuracy": accuracy, "telling": telling}
