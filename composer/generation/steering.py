"""Steering a continuation towards the piece it continues: its key, chord size and register.

The network hears the user's piece, but a piano piece with six-note voicings in A major is far
from the chorales and tunes it learnt from, and left alone it drifts to what it knows. Steering
adds a bias to the network's chord logits before sampling: chords whose pitch classes the piece
uses, whose size is the piece's usual one and whose notes lie in the piece's range become
likelier, in proportion to ``strength``. The network still chooses; steering leans. (A lean
towards the piece's usual width, lowest to highest note, was dropped: it kept the new part
narrower than the piece; models/README.md.)

A fixed lean towards the piece's commonest pitch classes over-shoots: the new part settles on
the three or four likeliest and its pitch-class spread narrows away from the piece's (measured on
Freedoom's music: at four times the strength, the same key in 15% of continuations instead of
33%). So the key, the register, the chord sizes and the pace are also kept in balance as the new
part goes: :class:`Balance` follows the pitch classes, registers (half octaves), chord sizes and
gaps between onsets the part has played lately and leans towards the ones it has played less
than the piece does, and away from the ones it has played more. The model's chords cannot reach
every register a piece uses, so once the part is chosen :func:`fit_register` moves its bass and
top line by whole octaves into the piece's range; nor its thickest voicings (the bundled model's
chords have at most five notes, a game track's six or more), so :func:`fill_chords` doubles
chord notes at the octave where the part is thinner than the piece.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from composer.events import MAX_CHORD_SIZE, TICKS_PER_QUARTER, Event
from composer.keys import pitch_class_histogram
from composer.model.vocabulary import MARKERS, Vocabulary

BALANCE_EVENTS = 16.0
"""How far back the balance looks, in events (an exponential memory)."""
BALANCE = 3.0
"""The balance's weight against the fixed bias's (measured on Freedoom's music, models/README.md)."""
REGISTER = 6
"""Registers are this many semitones wide."""
_REGISTERS = 128 // REGISTER + 1
_GROUPS = (slice(0, 12), slice(12, 12 + _REGISTERS), slice(12 + _REGISTERS, 12 + _REGISTERS + MAX_CHORD_SIZE))
"""Where the pitch classes, the registers and the chord sizes are in a row of shares."""
REGISTER_PULL = 2.0
"""How many times the pull back into balance counts for registers, against pitch classes and chord
sizes: at 1 the new part kept to too narrow a range (its span within 25% of the piece's for 51%
of Freedoom's tracks, the tracks against themselves 82%); at 2, 64% (models/README.md)."""
RECENT_EVENTS = 64
"""How much of the end of the piece sets the texture to steer towards."""
RANGE_QUARTERS = 64
"""How far back the piece's range is read: its last 64 quarter notes (16 bars of 4/4), or its
last :data:`RECENT_EVENTS` events where those reach further. A game track's last 64 events can
be a fast bass line alone while its melody sounds over the same bars in fewer, longer notes:
read from those events, the range missed the melody, and the new part came out within 25% of
the piece's span for 78% of Freedoom's tracks; read from the bars, 85% (the tracks against
themselves: 82%; models/README.md)."""
FLOOR = 0.02
"""The smallest share a pitch class counts for, so a chromatic passing note is unlikely, not banned."""


@dataclass(frozen=True)
class Texture:
    """What the end of a piece sounds like: its pitch-class shares, chord size and range."""

    pitch_classes: np.ndarray
    notes_per_onset: float
    low: float
    high: float
    """The 5th and 95th percentiles of its pitches."""
    registers: np.ndarray
    """The shares of its notes in each register (:data:`REGISTER` semitones wide)."""
    sizes: np.ndarray
    """The shares of its onsets with 1, 2, ... :data:`~composer.events.MAX_CHORD_SIZE` notes."""
    iois: tuple[int, ...]
    """Its gaps from one onset to the next, in grid ticks."""
    lowest: int
    highest: int
    """Its lowest and highest notes: how far :func:`fit_register` may move an outer voice."""


def _shares(events: Sequence[Event]) -> np.ndarray:
    """The pitch-class shares of ``events`` (even where there are none)."""
    histogram = pitch_class_histogram(events)
    return histogram / histogram.sum() if histogram.any() else np.full(12, 1 / 12)


def _range(events: Sequence[Event]) -> tuple[float, float]:
    """The 5th and 95th percentiles of the pitches of ``events``."""
    low, high = np.percentile([p for e in events for p in e.pitches], [5, 95])
    return float(low), float(high)


def texture_of(events: Sequence[Event]) -> Texture:
    """The texture of the last :data:`RECENT_EVENTS` events, with the range of the last
    :data:`RANGE_QUARTERS` quarter notes."""
    recent = list(events[-RECENT_EVENTS:])
    pitches = [p for e in recent for p in e.pitches]
    registers = np.bincount(np.array(pitches) // REGISTER, minlength=_REGISTERS).astype(float)
    bars = _last_quarters(events, RANGE_QUARTERS)
    low, high = _range(bars)
    reach = [p for e in bars for p in e.pitches]
    return Texture(
        pitch_classes=_shares(recent),
        notes_per_onset=float(np.mean([len(e.pitches) for e in recent])),
        low=low,
        high=high,
        registers=registers / registers.sum(),
        sizes=np.bincount([len(e.pitches) - 1 for e in recent], minlength=MAX_CHORD_SIZE) / len(recent),
        iois=tuple(e.ioi for e in recent),
        lowest=min(reach),
        highest=max(reach),
    )


def _last_quarters(events: Sequence[Event], quarters: int) -> list[Event]:
    """The events that start in the last ``quarters`` quarter notes of ``events``, or the last
    :data:`RECENT_EVENTS` where those are more."""
    span, count = 0, 0
    for event in reversed(events):
        count += 1
        span += event.ioi
        if span >= quarters * TICKS_PER_QUARTER:
            break
    return list(events[-max(count, RECENT_EVENTS) :])


def chord_bias(vocabulary: Vocabulary, texture: Texture, strength: float = 1.0) -> np.ndarray:
    """A bias (in logits) for every pitch id of ``vocabulary``: 0 for the markers, most for chords
    in the texture's key, of its size, within its range."""
    fit = np.log(np.maximum(texture.pitch_classes, FLOOR) * 12)  # 0 for an even share, up for the key
    notes, mask = vocabulary.chord_notes
    count = mask.sum(axis=1)
    key = (fit[notes % 12] * mask).sum(axis=1) / count
    size = -2 * np.abs(count - texture.notes_per_onset) / max(1.0, texture.notes_per_onset)
    outside = np.maximum(0.0, np.maximum(texture.low - notes, notes - texture.high))
    within = -(((outside / 6) ** 2) * mask).sum(axis=1) / count
    bias = np.zeros(len(vocabulary.pitch_sets) + MARKERS, np.float32)
    bias[MARKERS:] = strength * (key + size + within)
    return bias


@dataclass(frozen=True)
class Steering:
    """How a continuation is steered: a fixed bias, and the shares of pitch classes and registers
    to keep in balance."""

    fixed: np.ndarray
    """:func:`chord_bias`, one value per pitch id."""
    target: np.ndarray
    """The piece's shares of pitch classes, registers and chord sizes (:data:`_GROUPS`)."""
    shares: np.ndarray
    """Each pitch id's shares of the same, shape ``(ids, len(target))`` (zero for the markers)."""
    balance: float
    pace: np.ndarray
    """The piece's shares of each gap id (the markers' shares are 0)."""


def steering(vocabulary: Vocabulary, texture: Texture, strength: float = 1.0) -> Steering:
    """The steering of a continuation whose piece ends with ``texture``."""
    shares = np.zeros((len(vocabulary.pitch_sets) + MARKERS, _GROUPS[-1].stop), np.float32)
    notes, mask = vocabulary.chord_notes
    count = mask.sum(axis=1)
    ids = np.broadcast_to(MARKERS + np.arange(len(notes))[:, None], notes.shape)[mask]
    weight = np.broadcast_to(1 / count[:, None], notes.shape)[mask]
    np.add.at(shares, (ids, notes[mask] % 12), weight)
    np.add.at(shares, (ids, 12 + notes[mask] // REGISTER), weight)
    shares[MARKERS + np.arange(len(notes)), _GROUPS[2].start + count - 1] = 1.0
    target = np.concatenate([texture.pitch_classes, texture.registers, texture.sizes])
    known = np.array(vocabulary.iois)
    gap_ids = [MARKERS + int(np.abs(known - ioi).argmin()) for ioi in texture.iois]
    pace = np.bincount(gap_ids, minlength=len(known) + MARKERS) / max(1, len(gap_ids))
    return Steering(chord_bias(vocabulary, texture, strength), target, shares, BALANCE * strength, pace)


class Balance:
    """One new part's recent pitch classes and registers, and the bias that pulls them towards
    the piece's."""

    def __init__(self, steering: Steering) -> None:
        self.steering = steering
        self.heard = steering.target * BALANCE_EVENTS  # as if the part had been in balance so far
        self.gaps = steering.pace * BALANCE_EVENTS
        self.weights = np.ones(len(steering.target), np.float32)
        self.weights[_GROUPS[1]] = REGISTER_PULL

    def bias(self) -> np.ndarray:
        """The chord bias for the next event: the fixed one plus the pull back into balance."""
        s = self.steering
        recent = np.concatenate([self.heard[g] / self.heard[g].sum() for g in _GROUPS])
        pull = np.log(np.maximum(s.target, FLOOR)) - np.log(np.maximum(recent, FLOOR))
        return s.fixed + s.balance * (s.shares @ (self.weights * pull.astype(np.float32)))

    def hear(self, pitch_id: int) -> None:
        """Count the chord just chosen."""
        self.heard = self.heard * (1 - 1 / BALANCE_EVENTS) + self.steering.shares[pitch_id]

    def gap_bias(self) -> np.ndarray:
        """The bias for the gap to the next onset: towards the gaps played less than the piece."""
        s = self.steering
        recent = self.gaps / self.gaps.sum()
        return s.balance * (np.log(np.maximum(s.pace, FLOOR)) - np.log(np.maximum(recent, FLOOR)))

    def hear_gap(self, gap_id: int) -> None:
        """Count the gap just chosen."""
        self.gaps = self.gaps * (1 - 1 / BALANCE_EVENTS)
        self.gaps[gap_id] += 1.0


KEY_DISTANCE = 4.0
"""How much a candidate's pitch-class mismatch counts in :func:`texture_distance` against the
log ratios of span, chord size and pace (a mismatch of 0.25, a key apart, as much as a span
e^1 times too wide)."""


def texture_distance(events: Sequence[Event], texture: Texture) -> float:
    """How far a candidate continuation is from the end of its piece: the pitch-class shares it
    does not share with the piece (times :data:`KEY_DISTANCE`), and how far its span, notes per
    onset and mean gap between onsets are from the piece's, as absolute log ratios."""
    if not events:
        return float("inf")
    shares, (low, high) = _shares(events), _range(events)
    ours = (max(high - low, 1.0), np.mean([len(e.pitches) for e in events]), np.mean([e.ioi for e in events]))
    theirs = (max(texture.high - texture.low, 1.0), texture.notes_per_onset, np.mean(texture.iois))
    apart = KEY_DISTANCE * (1.0 - float(np.minimum(shares, texture.pitch_classes).sum()))
    return apart + sum(
        abs(float(np.log(max(a, 0.5) / max(b, 0.5)))) for a, b in zip(ours, theirs, strict=True)
    )


def fit_register(events: Sequence[Event], texture: Texture) -> list[Event]:
    """A new part's outer voices moved by whole octaves towards its piece's range, where the
    model's chords do not reach it.

    The model only has the chords it learnt (the bundled one's lowest note is A1), while game and
    piano music often has its bass an octave or two lower, so a continuation came out narrower
    than its piece. Where the part's 5th-percentile note lies an octave or more above the
    piece's, the lowest note of each chord goes down by those octaves, never below the piece's
    lowest note; where its 95th lies an octave or more below the piece's, each chord's top note
    goes up likewise. Single notes (a melody) stay where they are, and so do the chords' pitch
    classes: only the octave of the bass and of the top line changes.
    """
    if not events:
        return []
    low, high = _range(events)
    down = 12 * max(0, math.floor((low - texture.low) / 12 + 0.5))
    up = 12 * max(0, math.floor((texture.high - high) / 12 + 0.5))
    fitted = []
    for event in events:
        notes = list(event.pitches)
        if len(notes) > 1 and down and notes[0] - down >= texture.lowest:
            notes[0] -= down
        if len(notes) > 1 and up and notes[-1] + up <= texture.highest:
            notes[-1] += up
        fitted.append(replace(event, pitches=tuple(notes)) if notes != list(event.pitches) else event)
    return fitted


FILL_BELOW = 0.85
"""A new part's chords are filled out (:func:`fill_chords`) where its notes per onset are under
this share of its piece's."""


def fill_chords(events: Sequence[Event], texture: Texture) -> list[Event]:
    """A new part's chords filled out with octave doublings of their own notes where the part is
    thinner than its piece.

    The model only has the chords it learnt, so a piece voiced in six or eight notes (a game
    track's unison and octave doublings across its channels) was continued by chords of three or
    four, thinner than the piece for most of the Freedoom tracks whose chord size missed. Where the
    part's mean notes per onset is under :data:`FILL_BELOW` of the piece's, each event gets as many
    more notes as the ratio asks (a single note too: a melody doubled at the octave), each an
    octave or two from one of its notes and within the piece's lowest and highest: the harmony,
    the pitch classes and the rhythm stay as the model chose them.
    """
    if not events:
        return []
    ratio = texture.notes_per_onset / float(np.mean([len(e.pitches) for e in events]))
    if ratio * FILL_BELOW <= 1.0:
        return list(events)
    filled, owed = [], 0.0  # the fraction of a note rounding left over, carried to the next event
    for event in events:
        notes = list(event.pitches)
        owed += len(notes) * (ratio - 1)
        extra = _doublings(notes, texture)[: max(0, min(MAX_CHORD_SIZE - len(notes), round(owed)))]
        owed = min(owed - len(extra), 0.5)  # what the range did not allow is not carried
        filled.append(replace(event, pitches=tuple(sorted(notes + extra))) if extra else event)
    return filled


def _doublings(notes: Sequence[int], texture: Texture) -> list[int]:
    """The octave doublings of a chord's ``notes`` that its piece's range allows, the least
    conspicuous first: inside the chord's own span, then inside the piece's usual range (5th to
    95th percentile), then out to its lowest and highest notes; an octave before two; the bass's
    before the top note's before the inner notes'."""
    order = [notes[0], notes[-1], *notes[1:-1]] if len(notes) > 1 else list(notes)
    found: dict[int, tuple[int, int, int]] = {}
    for rank, pitch in enumerate(order):
        for octaves in (1, 2):
            for q in (pitch - 12 * octaves, pitch + 12 * octaves):
                if q in notes or not texture.lowest <= q <= texture.highest:
                    continue
                place = 0 if notes[0] < q < notes[-1] else 1 if texture.low <= q <= texture.high else 2
                found[q] = min(found.get(q, (place, octaves, rank)), (place, octaves, rank))
    return sorted(found, key=found.__getitem__)
