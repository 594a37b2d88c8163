"""Can a classifier tell generated pieces from the real music of their style?

Averages such as scale consistency can be met by pieces that still sound wrong; a classifier
trained to separate real pieces from generated ones finds whatever gives them away. Each piece
becomes a vector of key-free, tempo-free features
(:func:`composer.generation.features.features`); two different classifiers
(a regularised logistic regression and a random forest, from scikit-learn) are cross-validated
on real against generated, with equal numbers of each. 0.5 is chance: the pieces pass.
The features that differ most (by effect size) say what to fix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from composer.events import Event
from composer.generation.features import features

CLASSIFIERS = ("logistic regression", "random forest")


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
