"""Constrained decoding: the network writes chords under a melody it may not change.

The melody is a sequence of slots, one per note. At a note's onset only chords whose top note is
the melody note and that have the asked number of voices may be drawn; the event's duration is the
note's, and its gap to the next event is either the whole note or, on a quarter note or longer
that ends no phrase, half of it. Half means the network wants the lower voices to move under the
held melody note: the event in the middle may only hold notes below the melody, each a tone or
less from a voice it moves.
At a phrase end the chord must be a root-position tonic or dominant triad (the tonic at the last
note) when the vocabulary has one that fits; chords with notes outside the key are discouraged,
not forbidden, since Bach borrows them often. So are chords that move two voices in parallel
fifths or octaves from the chord before: the network learnt chords one event at a time, and left
alone it wrote such parallels sixty times as often as Bach (15 per 100 beats against 0.24).
Under the note before a phrase that can end on the tonic, a root-position dominant is favoured,
so phrases close with an authentic cadence more often (on held-out chorales 70% of phrase ends
made a cadence instead of 46%; Bach's own 86%).

Several candidates are drawn, each from its own seeded generator, stepping through the network
together as one batch; each is scored by the network's own untempered log-probability of every
token drawn (forced ones too) and of ending where the melody ends, and the likeliest is kept.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from composer.errors import InvalidOptionError
from composer.events import MAX_TICKS, quarters_to_ticks
from composer.generation.sampling import SamplingOptions, probabilities
from composer.harmonize.melody import Melody
from composer.keys import Key
from composer.model.stepper import State, Stepper
from composer.model.vocabulary import END, FIELDS, MARKERS, START, Vocabulary

OUT_OF_KEY_PENALTY = 1.5
"""Logits taken off a chord for each of its lower notes outside the key."""
PARALLEL_PENALTY = 12.0
"""Logits taken off a chord for each pair of voices it moves in parallel fifths or octaves."""
APPROACH_BONUS = 4.0
"""Logits added to a root-position dominant under the note before a phrase that can end on the
tonic, so the phrase closes with an authentic cadence more often."""
MOVE_RANGE = 2
"""How far (semitones) a lower voice may move in the middle of a melody note."""


@dataclass
class Decoded:
    """One candidate: its events and the network's score of them."""

    events: list[tuple[int, bool, tuple[int, ...]]] = field(default_factory=list)
    """(melody note index, whether halfway through the note, sounding pitches) of each event."""
    log_likelihood: float = 0.0
    """Sum of the network's log-probabilities of every token of the candidate and of its end."""


@dataclass
class _Slot:
    """What may be drawn at one melody note."""

    chords: np.ndarray
    """Ids of the chords allowed at the onset."""
    shift: int
    """Semitones the allowed chords are moved by to sound (a melody note above or below every
    chord of the vocabulary borrows one an octave away)."""
    duration: int
    """Duration id of the onset event (the melody note's length)."""
    whole: int
    """Gap id when the event lasts to the next melody onset."""
    half: int | None
    """Gap id of half the note, when the lower voices may move halfway."""
    half_duration: int | None
    """Duration id of the event halfway, when there may be one."""
    sounding: np.ndarray
    """The allowed chords as they sound (shifted), one row of pitches a chord, lowest first."""
    bonus: np.ndarray
    """Logits added to each allowed chord: the dominant before a phrase ends on the tonic."""


class _Candidate:
    """One harmonization being drawn."""

    def __init__(self, seed: int, number: int) -> None:
        self.rng = np.random.default_rng([seed, number])
        self.result = Decoded()
        self.note = 0
        self.middle = False
        self.lower: tuple[int, ...] = ()
        """The lower voices of the last onset chord, as the vocabulary holds them (before the shift)."""
        self.moves = np.zeros(0, np.int64)
        """The chords that may sound halfway through the current melody note."""
        self.row = np.full(4, START, np.int32)


def decode(
    stepper: Stepper,
    vocabulary: Vocabulary,
    melody: Melody,
    *,
    voices: int,
    key: Key,
    style: int,
    seed: int,
    temperature: float,
    candidates: int,
) -> list[Decoded]:
    """Draw ``candidates`` harmonizations of ``melody`` in ``voices`` parts, likeliest first."""
    slots = _slots(vocabulary, melody, voices, key)
    chords = _ChordTable(vocabulary, voices)
    penalty = _key_penalty(vocabulary, key)
    options = SamplingOptions(temperature=temperature)
    pieces = [_Candidate(seed, c) for c in range(candidates)]
    state = stepper.initial_state(candidates)
    styles = np.full(candidates, style)
    logits, state = stepper.step(np.stack([p.row for p in pieces]), styles, state)
    going = list(range(candidates))

    while going:
        chosen: dict[str, np.ndarray] = {}
        pitch_ids = []
        for b in going:
            piece = pieces[b]
            slot = slots[piece.note]
            z = logits["pitch"][b]
            allowed = piece.moves if piece.middle else slot.chords
            before = _sounding(piece.result.events, melody)
            if piece.middle:
                after = _with_moves(vocabulary, allowed, slot.shift, piece.result.events[-1][2])
            else:
                after = slot.sounding
            cost = penalty[allowed] + PARALLEL_PENALTY * _parallels(before, after)
            if not piece.middle:
                cost = cost - slot.bonus
            drawn = int(allowed[_draw(z[allowed] - cost, options, piece.rng)])
            piece.result.log_likelihood += _log_softmax(z)[drawn]
            pitch_ids.append(drawn)
            if not piece.middle and slot.half is not None:
                held = melody.notes[piece.note].pitch - slot.shift
                piece.lower = tuple(p for p in vocabulary.pitch_sets[drawn - MARKERS] if p < held)
                piece.moves = chords.moves(piece.lower, held)
        chosen["pitch"] = np.array(pitch_ids)
        for i, name in enumerate(FIELDS[1:], start=1):
            z = stepper.condition(name, logits[name][going], chosen)
            values = []
            for row, b in enumerate(going):
                piece, slot = pieces[b], slots[pieces[b].note]
                if name == "duration":
                    value = slot.half_duration if piece.middle else slot.duration
                elif name == "ioi" and not piece.middle and slot.half is not None and piece.moves.size:
                    pair = np.array([slot.whole, slot.half])
                    value = int(pair[_draw(z[row][pair], options, piece.rng)])
                elif name == "ioi":
                    value = slot.half if piece.middle else slot.whole
                else:
                    value = int(_draw(z[row][MARKERS:], options, piece.rng)) + MARKERS
                piece.result.log_likelihood += _log_softmax(z[row])[value]
                piece.row[i] = value
                values.append(value)
            chosen[name] = np.array(values)
        for row, b in enumerate(going):
            piece = pieces[b]
            piece.row[0] = chosen["pitch"][row]
            _record(piece, slots[piece.note], vocabulary)
        rows = np.stack([pieces[b].row for b in range(candidates)])
        logits, state = stepper.step(rows, styles, state)
        for b in going:
            if pieces[b].note == len(slots):  # the melody is over: how likely is it to end here?
                pieces[b].result.log_likelihood += _log_softmax(logits["pitch"][b])[END]
        going = [b for b in going if pieces[b].note < len(slots)]
    return sorted((p.result for p in pieces), key=lambda r: -r.log_likelihood)


@dataclass
class _Hypothesis:
    """One partial harmonization in the beam: its events, its scores and the network's state row."""

    events: list[tuple[int, bool, tuple[int, ...]]]
    log_likelihood: float
    score: float
    """The log-likelihood less the key penalties of its chords: what the beam keeps the best of."""
    row: int
    """Its row in the batch of network states and logits."""


def beam_search(
    stepper: Stepper, vocabulary: Vocabulary, melody: Melody, *, voices: int, key: Key, style: int, width: int
) -> list[Decoded]:
    """The ``width`` best harmonizations a beam search finds, likeliest first.

    At every melody note each kept harmonization is extended by each allowed chord, and the
    ``width`` best extensions (network log-probability less the key penalty) are kept. The rest of
    an event is chosen greedily: its loudness is the likeliest, it moves halfway through the note
    when the network finds that likelier than holding, and then to its likeliest move.
    """
    slots = _slots(vocabulary, melody, voices, key)
    table = _ChordTable(vocabulary, voices)
    penalty = _key_penalty(vocabulary, key)
    state = stepper.initial_state(1)
    logits, state = stepper.step(np.full((1, 4), START, np.int32), np.array([style]), state)
    beam = [_Hypothesis([], 0.0, 0.0, 0)]
    for index, slot in enumerate(slots):
        pitch = np.stack([_log_softmax(logits["pitch"][h.row]) for h in beam])  # (beam, vocabulary)
        parallel = np.stack([_parallels(_sounding(h.events, melody), slot.sounding) for h in beam])
        cost = penalty[slot.chords][None, :] - slot.bonus[None, :] + PARALLEL_PENALTY * parallel
        scores = np.array([h.score for h in beam])[:, None] + pitch[:, slot.chords] - cost
        best = np.argsort(-scores, axis=None, kind="stable")[:width]
        parents, picks = np.unravel_index(best, scores.shape)
        rows = [beam[p].row for p in parents]
        chords = slot.chords[picks]
        chosen = {"pitch": chords}
        row_ids = np.zeros((len(rows), 4), np.int32)
        row_ids[:, 0] = chords
        gained = pitch[parents, chords].astype(float)
        split = np.zeros(len(rows), bool)
        moves: list[np.ndarray] = []
        for i, name in enumerate(FIELDS[1:], start=1):
            z = stepper.condition(name, logits[name][rows], chosen)
            for r in range(len(rows)):
                if name == "duration":
                    value = slot.duration
                elif name == "ioi":
                    held = melody.notes[index].pitch - slot.shift
                    lower = tuple(p for p in vocabulary.pitch_sets[chords[r] - MARKERS] if p < held)
                    moves.append(table.moves(lower, held) if slot.half is not None else np.zeros(0, np.int64))
                    value = slot.whole
                    if moves[r].size and z[r][slot.half] > z[r][slot.whole]:
                        value, split[r] = slot.half, True
                else:
                    value = int(np.argmax(z[r][MARKERS:])) + MARKERS
                gained[r] += _log_softmax(z[r])[value]
                row_ids[r, i] = value
            chosen[name] = row_ids[:, i]
        state = state.select(rows)
        logits, state = stepper.step(row_ids, np.full(len(rows), style), state)
        events = [
            [
                *beam[p].events,
                (index, False, tuple(q + slot.shift for q in vocabulary.pitch_sets[c - MARKERS])),
            ]
            for p, c in zip(parents, chords, strict=True)
        ]
        extra = np.zeros(len(rows))
        if split.any():
            extra, middle_ids = _middle_events(stepper, logits, split, moves, penalty, slot)
            for r in np.flatnonzero(split):
                pitches = vocabulary.pitch_sets[middle_ids[r, 0] - MARKERS]
                events[r].append((index, True, tuple(q + slot.shift for q in pitches)))
            stepped, after = stepper.step(middle_ids, np.full(len(rows), style), state)
            keep = split[:, None]
            logits = {name: np.where(keep, stepped[name], logits[name]) for name in logits}
            state = State(
                [np.where(keep, a, b) for a, b in zip(after.h, state.h, strict=True)],
                [np.where(keep, a, b) for a, b in zip(after.c, state.c, strict=True)],
            )
        beam = [
            _Hypothesis(
                events[r],
                beam[p].log_likelihood + gained[r] + extra[r],
                scores[p, k] + (gained[r] - pitch[p, slot.chords[k]]) + extra[r],
                r,
            )
            for r, (p, k) in enumerate(zip(parents, picks, strict=True))
        ]
    ends = [_log_softmax(logits["pitch"][h.row])[END] for h in beam]
    found = [Decoded(h.events, h.log_likelihood + end) for h, end in zip(beam, ends, strict=True)]
    return sorted(found, key=lambda d: -d.log_likelihood)


def _middle_events(
    stepper: Stepper,
    logits: dict[str, np.ndarray],
    split: np.ndarray,
    moves: list[np.ndarray],
    penalty: np.ndarray,
    slot: _Slot,
) -> tuple[np.ndarray, np.ndarray]:
    """For the rows that move halfway: their likeliest move (less its key penalty) and loudness, as
    token rows, and the log-probability each adds (0 and a copy of the row for the others)."""
    rows = len(split)
    ids = np.zeros((rows, 4), np.int32)
    gained = np.zeros(rows)
    for r in range(rows):
        allowed = moves[r] if split[r] else np.array([MARKERS])
        lp = _log_softmax(logits["pitch"][r])
        ids[r, 0] = allowed[int(np.argmax(lp[allowed] - penalty[allowed]))]
        gained[r] = lp[ids[r, 0]] if split[r] else 0.0
    chosen = {"pitch": ids[:, 0]}
    for i, name in enumerate(FIELDS[1:], start=1):
        z = stepper.condition(name, logits[name], chosen)
        for r in range(rows):
            if name == "duration":
                value = slot.half_duration
            elif name == "ioi":
                value = slot.half
            else:
                value = int(np.argmax(z[r][MARKERS:])) + MARKERS
            ids[r, i] = value if split[r] else MARKERS
            if split[r]:
                gained[r] += _log_softmax(z[r])[value]
        chosen[name] = ids[:, i]
    return gained, ids


def _record(piece: _Candidate, slot: _Slot, vocabulary: Vocabulary) -> None:
    """Keep the event just drawn and move the candidate to its next slot."""
    pitches = tuple(p + slot.shift for p in vocabulary.pitch_sets[int(piece.row[0]) - MARKERS])
    piece.result.events.append((piece.note, piece.middle, pitches))
    if piece.middle:
        piece.middle = False
        piece.note += 1
        return
    if slot.half is not None and piece.moves.size and int(piece.row[2]) == slot.half:
        piece.middle = True
    else:
        piece.note += 1


def _slots(vocabulary: Vocabulary, melody: Melody, voices: int, key: Key) -> list[_Slot]:
    """What each melody note allows, from the chord vocabulary."""
    sized = [i for i, c in enumerate(vocabulary.pitch_sets) if len(c) == voices]
    if not sized:
        raise InvalidOptionError(f"This model knows no chords of {voices} notes; ask for other voices.")
    tops = np.array([vocabulary.pitch_sets[i][-1] for i in sized])
    ids = np.array(sized) + MARKERS
    slots = []
    notes = melody.notes
    for i, note in enumerate(notes):
        shift = _shift(tops, note.pitch)
        chords = ids[tops == note.pitch - shift]
        if melody.phrase_ends[i]:
            chords = _cadential(vocabulary, chords, shift, key, final=i + 1 == len(notes))
        length = quarters_to_ticks(note.duration)
        gap = quarters_to_ticks(notes[i + 1].onset - note.onset) if i + 1 < len(notes) else length
        half = half_duration = None
        held = gap == length and gap >= 12 and gap % 2 == 0 and gap // 2 in vocabulary.iois
        if held and voices > 1 and not melody.phrase_ends[i]:  # a cadence chord holds still
            half = vocabulary.nearest("ioi", gap // 2)
            half_duration = vocabulary.nearest("duration", gap // 2)
        sounding = (
            np.array([vocabulary.pitch_sets[c - MARKERS] for c in chords]).reshape(len(chords), -1) + shift
        )
        closing = i + 1 < len(notes) and melody.phrase_ends[i + 1] and _in_tonic(notes[i + 1].pitch, key)
        bonus = APPROACH_BONUS * _dominants(sounding, key) if closing else np.zeros(len(chords))
        slots.append(
            _Slot(
                chords,
                shift,
                vocabulary.nearest("duration", min(max(1, length), MAX_TICKS)),
                vocabulary.nearest("ioi", min(max(1, gap), MAX_TICKS)),
                half,
                half_duration,
                sounding,
                bonus,
            )
        )
    return slots


def _in_tonic(pitch: int, key: Key) -> bool:
    """Whether ``pitch`` belongs to the key's tonic triad (a phrase ending on it can close on I)."""
    return (pitch - key.tonic) % 12 in {0, 3 if key.minor else 4, 7}


def _dominants(sounding: np.ndarray, key: Key) -> np.ndarray:
    """1 for each chord (a row of pitches, lowest first) that is a root-position dominant triad or
    seventh of ``key``, else 0."""
    root = (key.tonic + 7) % 12
    classes = (sounding - root) % 12
    fits = np.isin(classes, [0, 4, 7, 10]).all(axis=1) & (classes[:, 0] == 0) & (classes == 4).any(axis=1)
    return fits.astype(float)


def moving_voices(current: Sequence[int], moving: Sequence[int]) -> tuple[int, ...]:
    """Which of the lower voices (``current``, bottom up) sing the ``moving`` notes (ascending)
    of a move under a held melody note: in order, each the voice it leaves the least far."""
    return min(
        itertools.combinations(range(len(current)), len(moving)),
        key=lambda chosen: sum(abs(current[v] - p) for v, p in zip(chosen, moving, strict=True)),
    )


def _after_move(onset: Sequence[int], move: Sequence[int], held: int) -> list[int]:
    """Every voice, bottom up and the melody last, once ``move`` sounds under the held melody note
    of the onset chord ``onset``."""
    lower = sorted(onset)[:-1]
    moving = sorted(move)
    for v, pitch in zip(moving_voices(lower, moving), moving, strict=True):
        lower[v] = pitch
    return [*lower, held]


def _sounding(events: list[tuple[int, bool, tuple[int, ...]]], melody: Melody) -> np.ndarray | None:
    """What every voice sings now, bottom up and the melody last (``None`` before the first chord)."""
    if not events:
        return None
    note, middle, pitches = events[-1]
    if not middle:
        return np.array(sorted(pitches))
    return np.array(_after_move(events[-2][2], pitches, melody.notes[note].pitch))


def _with_moves(vocabulary: Vocabulary, moves: np.ndarray, shift: int, onset: Sequence[int]) -> np.ndarray:
    """What every voice would sing after each of the ``moves`` under the onset chord ``onset``."""
    held = max(onset)
    return np.array(
        [_after_move(onset, [p + shift for p in vocabulary.pitch_sets[m - MARKERS]], held) for m in moves]
    ).reshape(len(moves), len(onset))


def _parallels(before: np.ndarray | None, after: np.ndarray) -> np.ndarray:
    """For each row of ``after`` (what every voice sings, in the order of ``before``), how many
    pairs of voices move to it from ``before`` in parallel fifths or octaves: both voices moving the
    same way, from a perfect fifth or octave (compound, or unison) to the same interval, as
    ``training.harmony_metrics`` counts them."""
    found = np.zeros(len(after))
    if before is None or after.shape[1] != len(before):
        return found
    moved = np.sign(after - before[None, :])
    for i in range(len(before)):
        for j in range(i + 1, len(before)):
            first = abs(int(before[j]) - int(before[i])) % 12
            if first not in (0, 7):
                continue
            second = np.abs(after[:, j] - after[:, i]) % 12
            found += (second == first) & (moved[:, i] != 0) & (moved[:, i] == moved[:, j])
    return found


def _shift(tops: np.ndarray, pitch: int) -> int:
    """How far the chords under ``pitch`` are moved to sound: 0 when some chord has it on top, else
    the nearest octave that has chords with its pitch class on top, else (a vocabulary that has
    none) the nearest top note's distance."""
    octaves = [k * 12 for k in sorted(range(-4, 5), key=abs)]
    for shift in octaves:
        if (tops == pitch - shift).any():
            return shift
    return int(pitch - tops[np.argmin(np.abs(tops - pitch))])


def _cadential(vocabulary: Vocabulary, chords: np.ndarray, shift: int, key: Key, final: bool) -> np.ndarray:
    """The chords among ``chords`` fit for a cadence: root-position tonic (and, before the last
    note, dominant) triads, a dominant seventh too (with two voices, the root under the melody);
    all of ``chords`` when none fits."""
    third = 3 if key.minor else 4
    tonic = (key.tonic, frozenset({0, third, 7}))
    dominant = ((key.tonic + 7) % 12, frozenset({0, 4, 7, 10}))
    wanted = [tonic] if final else [tonic, dominant]
    fit = []
    for chord_id in chords:
        pitches = [p + shift for p in vocabulary.pitch_sets[chord_id - MARKERS]]
        bass = pitches[0] % 12
        for root, members in wanted:
            classes = {(p - root) % 12 for p in pitches}
            triad = {0, 4 if root != key.tonic else third} <= classes or len(pitches) < 3
            if bass == root and classes <= members and triad:
                fit.append(chord_id)
                break
    return np.array(fit) if fit else chords


class _ChordTable:
    """The vocabulary's chords small enough to move under a held note (fewer notes than the lower
    voices), as one padded array, to find the moves at once; each answer is kept, since the same
    chords come back often."""

    def __init__(self, vocabulary: Vocabulary, voices: int) -> None:
        self.ids = np.array([i for i, c in enumerate(vocabulary.pitch_sets) if len(c) < voices], np.int64)
        self.pitches = np.full((len(self.ids), max(1, voices - 1)), np.nan)
        for row, i in enumerate(self.ids):
            chord = vocabulary.pitch_sets[i]
            self.pitches[row, : len(chord)] = chord
        self.sizes = np.array([len(vocabulary.pitch_sets[i]) for i in self.ids])
        self.top = np.nanmax(self.pitches, axis=1) if len(self.ids) else np.zeros(0)
        self._known: dict[tuple[tuple[int, ...], int], np.ndarray] = {}

    def moves(self, lower: tuple[int, ...], held: int) -> np.ndarray:
        """Ids of the chords that may sound halfway through the melody note ``held`` over the chord
        whose lower voices are ``lower``: no more notes than those voices, all below ``held``, each
        a step from one of the voices and none of them a note already sounding."""
        if not lower:
            return np.zeros(0, np.int64)
        known = self._known.get((lower, held))
        if known is not None:
            return known
        voices = np.array(lower, dtype=float)
        distance = np.abs(self.pitches[:, :, None] - voices[None, None, :]).min(axis=2)
        present = ~np.isnan(self.pitches)
        near = np.where(present, (distance > 0) & (distance <= MOVE_RANGE), True).all(axis=1)
        fits = near & (self.top < held) & (self.sizes <= len(lower))
        found = self.ids[fits] + MARKERS
        self._known[(lower, held)] = found
        return found


def _key_penalty(vocabulary: Vocabulary, key: Key) -> np.ndarray:
    """Per chord id, the logits taken off for its notes outside ``key`` (nothing for markers)."""
    scale = key.scale | ({(key.tonic + 9) % 12} if key.minor else set())  # melodic minor's raised sixth
    penalty = np.zeros(len(vocabulary.pitch_sets) + MARKERS)
    for i, chord in enumerate(vocabulary.pitch_sets):
        penalty[i + MARKERS] = OUT_OF_KEY_PENALTY * sum(p % 12 not in scale for p in chord)
    return penalty


def _draw(logits: np.ndarray, options: SamplingOptions, rng: np.random.Generator) -> int:
    """An index into ``logits`` drawn at the options' temperature, nucleus-trimmed."""
    p = probabilities(logits, options)
    return int(min(np.searchsorted(np.cumsum(p), rng.random() * p.sum(), side="right"), p.size - 1))


def _log_softmax(z: np.ndarray) -> np.ndarray:
    """Untempered log-probabilities of a row of logits."""
    z = np.asarray(z, dtype=np.float64)
    top = z.max()
    return z - (top + np.log(np.exp(z - top).sum()))
