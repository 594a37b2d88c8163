"""Keys: reading a key name such as ``Am`` or ``F#``, and finding the key a list of events is in.

Detection is the Krumhansl-Schmuckler method: correlate the duration-weighted pitch-class
histogram with a major and a minor profile in all twelve transpositions and take the best.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from composer.errors import InvalidOptionError
from composer.events import Event

NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_KEY_RE = re.compile(r"^\s*([A-Ga-g])\s*(#|b|-|sharp|flat)?\s*(m|min|minor|maj|major)?\s*$")

# Krumhansl-Kessler probe-tone profiles, starting from the tonic.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10, 11)  # natural minor plus the raised leading tone


@dataclass(frozen=True)
class Key:
    """A tonic pitch class (0 = C) and a mode."""

    tonic: int
    minor: bool = False

    def __str__(self) -> str:
        return f"{NAMES[self.tonic]}{'m' if self.minor else ''}"

    @property
    def scale(self) -> frozenset[int]:
        """Pitch classes that belong to the key."""
        steps = MINOR_SCALE if self.minor else MAJOR_SCALE
        return frozenset((self.tonic + s) % 12 for s in steps)

    @property
    def signature(self) -> tuple[int, bool]:
        """The key signature as a MIDI file writes it: sharps (negative for flats, -5 to 6) and mode."""
        major_tonic = (self.tonic + 3) % 12 if self.minor else self.tonic
        fifths = major_tonic * 7 % 12
        return (fifths - 12 if fifths > 6 else fifths), self.minor

    def tonic_chord(self) -> tuple[int, ...]:
        """A root-position tonic triad around middle C, with the root doubled in the bass."""
        root = 48 + self.tonic
        third = 3 if self.minor else 4
        return (root, root + 12, root + 12 + third, root + 19)


def parse_key(text: str) -> Key:
    """``C``, ``Am``, ``F#m``, ``Bb``, ``E-``, ``c# minor``, ``D major`` -> :class:`Key`."""
    match = _KEY_RE.match(text or "")
    if not match:
        raise InvalidOptionError(f"'{text}' is not a key I know; try C, Am, F#m or Bb.")
    letter, accidental, mode = match.groups()
    tonic = _LETTERS[letter.upper()]
    if accidental in ("#", "sharp"):
        tonic += 1
    elif accidental in ("b", "-", "flat"):
        tonic -= 1
    return Key(tonic % 12, minor=bool(mode) and mode.startswith("m") and not mode.startswith("maj"))


def pitch_class_histogram(events: Sequence[Event]) -> np.ndarray:
    """How long each pitch class sounds, in ticks, over ``events``."""
    histogram = np.zeros(12)
    for event in events:
        for pitch in event.pitches:
            histogram[pitch % 12] += event.duration
    return histogram


def detect_key(events: Sequence[Event]) -> Key:
    """The most likely key of ``events`` (C major for silence)."""
    histogram = pitch_class_histogram(events)
    if not histogram.any():
        return Key(0)
    best, best_score = Key(0), -np.inf
    for tonic in range(12):
        rolled = np.roll(histogram, -tonic)
        for minor, profile in ((False, MAJOR_PROFILE), (True, MINOR_PROFILE)):
            score = np.corrcoef(rolled, profile)[0, 1]
            if score > best_score:
                best, best_score = Key(tonic, minor), score
    return best


def draw_key(shares: dict[str, float], seed: int, candidate: int = 0) -> Key | None:
    """A key drawn (with ``seed``, and for candidates after the first their number) from
    ``shares`` (key name -> share of a style's training pieces); None when there are none
    (models from before they were recorded)."""
    if not shares:
        return None
    names = sorted(shares)
    weights = np.array([shares[n] for n in names], dtype=float)
    rng = np.random.default_rng([seed, 7, candidate] if candidate else [seed, 7])
    drawn = rng.choice(len(names), p=weights / weights.sum())
    return parse_key(names[int(drawn)])


def settle_key(
    events: Sequence[Event], shares: dict[str, float], seed: int, candidate: int = 0
) -> list[Event]:
    """``events`` moved into the key :func:`draw_key` draws with ``seed`` (and ``candidate``), so
    new pieces spread over keys as the style's music does.

    A model trained in all twelve keys starts anywhere; the collections it learnt from sit in a
    few keys. Unchanged when there are no shares.
    """
    drawn = draw_key(shares, seed, candidate)
    if drawn is None or not events:
        return list(events)
    shift = shift_between(detect_key(events), drawn)
    return [e.transposed(shift) for e in events] if shift else list(events)


def key_fit(pitch_sets: Sequence[tuple[int, ...]], key: Key) -> np.ndarray:
    """How well each chord of ``pitch_sets`` fits ``key``: the mean, over its notes, of the log of
    the key's Krumhansl-Kessler weight for the note's pitch class against the profile's mean
    (above 0 for the tonic triad, below for notes foreign to the key)."""
    profile = np.roll(MINOR_PROFILE if key.minor else MAJOR_PROFILE, key.tonic)
    weight = np.log(profile / profile.mean())
    return np.array([float(np.mean(weight[np.array(chord) % 12])) for chord in pitch_sets])


def tonic_chords(pitch_sets: Sequence[tuple[int, ...]], key: Key) -> list[int]:
    """The indices of the chords in ``pitch_sets`` that are ``key``'s tonic triad in root position:
    at least two notes, the tonic lowest, the third of the key's mode present, nothing but tonic,
    third and fifth. A chorale opens on one; see :data:`composer.generation.generate.OPENING`."""
    third = (key.tonic + (3 if key.minor else 4)) % 12
    triad = {key.tonic, third, (key.tonic + 7) % 12}
    return [
        i
        for i, chord in enumerate(pitch_sets)
        if len(chord) > 1
        and min(chord) % 12 == key.tonic
        and third in {p % 12 for p in chord}
        and {p % 12 for p in chord} <= triad
    ]


def shift_between(source: Key, target: Key) -> int:
    """The smallest transposition (-5 to +6 semitones) that puts music in ``source`` into ``target``.

    Tonic goes to tonic when the modes agree. When they differ, the music moves to the target's
    relative key (same notes, other mode): music detected as C major asked to be in A minor stays
    put, since its notes already are A minor's; moving C to A would make it A major.
    """
    tonic = target.tonic
    if source.minor != target.minor:
        tonic = (tonic + (3 if target.minor else -3)) % 12
    shift = (tonic - source.tonic) % 12
    return shift - 12 if shift > 6 else shift
