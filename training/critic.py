"""Fitting a style's critic: gradient-boosted trees that tell its training pieces from the model's.

The critic (:class:`composer.generation.critic.Critic`) chooses, among several candidates the
composer draws for a new piece, the one likeliest to be real. It learns from the training pieces
only, never the held-out ones that judge the result (``evaluate --tell-apart``), and from pieces
the model writes with the style's own sampling, from seeds of their own (:data:`FIT_SEED`).
scikit-learn fits the trees; they are then copied out as plain arrays.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from composer.events import Event
from composer.generation.critic import LEAF, Critic
from composer.generation.features import features
from composer.generation.generate import PieceRequest
from composer.generation.sampling import SamplingOptions
from composer.model.artifact import Artifact
from composer.model.stepper import Stepper
from training.evaluate import generate_requests, style_settings

log = logging.getLogger(__name__)

FIT_SEED = 300_000
"""The critic's own pieces start at this seed, apart from the evaluation's (0-99, 100,000 on)
and the lean fitting's (200,000 on)."""
CANDIDATES = 8
"""Candidates a new piece draws for the critic by default (measured in models/README.md)."""
TREES = 150
DEPTH = 3
RATE = 0.05


def fit_critic(
    model: Artifact,
    stepper: Stepper,
    style: str,
    target: Sequence[Sequence[Event]],
    sampling: SamplingOptions | None = None,
    candidates: int = CANDIDATES,
    own_keys: bool = False,
    batch: int = 16,
    seed: int = 0,
) -> Critic:
    """A critic for ``style``: trees fitted to tell ``target`` (its training pieces) from as many
    pieces the model writes in the style with ``sampling`` (None: the style's own), of the
    training pieces' median length."""
    from sklearn.ensemble import GradientBoostingClassifier

    if style not in model.vocabulary.styles:
        raise ValueError(f"the model has no style {style!r}; it has {', '.join(model.vocabulary.styles)}")
    if len(target) < 10:
        raise ValueError(f"a critic for {style} needs at least 10 training pieces; there are {len(target)}")
    length = int(np.median([len(events) for events in target]))
    style_id = model.vocabulary.styles.index(style)
    requests = [
        PieceRequest(
            length=length,
            seed=FIT_SEED + i,
            style=style_id,
            outlines=model.vocabulary.outlines,
            **model.key_guide(style, FIT_SEED + i),
            **style_settings(model, {"sampling": sampling}, style),
        )
        for i in range(len(target))
    ]
    made = [m.events for m in generate_requests(model, stepper, requests, batch, critics=False)]
    rows = [features(events) for events in (*target, *made)]
    names = tuple(rows[0])
    x = np.array([[row[name] for name in names] for row in rows])
    y = np.array([0] * len(target) + [1] * len(made))
    trees = GradientBoostingClassifier(
        n_estimators=TREES, max_depth=DEPTH, learning_rate=RATE, subsample=0.8, random_state=seed
    ).fit(x, y)
    critic = export(trees, names, length, candidates, own_keys)
    if not np.allclose(critic.decision(x), trees.decision_function(x), atol=1e-6):
        raise RuntimeError("the critic's copied trees do not score as scikit-learn's do")
    log.info("critic for %s: %d training pieces against %d of the model's", style, len(target), len(made))
    return critic


def export(
    trees: object, names: Sequence[str], window: int, candidates: int, own_keys: bool = False
) -> Critic:
    """A fitted binary ``GradientBoostingClassifier`` as a :class:`Critic` (plain arrays)."""
    fitted = [estimator.tree_ for estimator in trees.estimators_[:, 0]]
    nodes = max(t.node_count for t in fitted)

    def padded(values: Sequence[np.ndarray], fill: float) -> np.ndarray:
        return np.array([np.pad(v, (0, nodes - len(v)), constant_values=fill) for v in values])

    feature = padded([np.where(t.children_left == LEAF, LEAF, t.feature) for t in fitted], LEAF)
    probe = np.zeros((1, len(names)))
    critic = Critic(
        names=tuple(names),
        window=window,
        candidates=candidates,
        own_keys=own_keys,
        base=0.0,
        rate=float(trees.learning_rate),
        feature=feature.astype(np.int64),
        threshold=padded([t.threshold for t in fitted], 0.0),
        left=padded([t.children_left for t in fitted], LEAF).astype(np.int64),
        right=padded([t.children_right for t in fitted], LEAF).astype(np.int64),
        value=padded([t.value[:, 0, 0] for t in fitted], 0.0),
    )
    # The starting score is scikit-learn's prior log-odds: whatever the trees leave of its decision.
    base = float(trees.decision_function(probe)[0] - critic.decision(probe)[0])
    return replace(critic, base=base)
