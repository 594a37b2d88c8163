"""Figures of a harmonization: the texture a harmonizer wrote under a melody, judged as a
harmony teacher would judge a chorale, and compared beat by beat with Bach's own.

A texture is a list of voices, top voice first; each voice is a list of notes
``(onset, duration, midi_pitch)`` with onset and duration in quarter notes. Every function here
is pure except for music21's key analysis and chord roots, which only read their input.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
from collections.abc import Sequence

import numpy as np
from music21 import chord, key, note, stream

Note = tuple[float, float, int]
Voice = Sequence[Note]
Texture = Sequence[Voice]
Slice = tuple[int | None, ...]
"""The pitch each voice sounds at one moment, top voice first; None where a voice rests."""

RANGES: dict[str, tuple[int, int]] = {
    "soprano": (60, 79),  # C4-G5
    "alto": (55, 74),  # G3-D5
    "tenor": (48, 67),  # C3-G4
    "bass": (40, 60),  # E2-C4
}
"""Each voice's usual range, lowest and highest MIDI pitch: the ranges Kostka and Payne give for
four-part writing (Tonal Harmony, chapter 5, "The Ranges of the Voices")."""

PERFECT = {0: "octaves", 7: "fifths"}
"""Interval classes (semitones mod 12) whose parallel motion is forbidden; unisons count as octaves."""

MINOR_RAISED = (9, 11)
"""The raised sixth and seventh of a minor key (melodic minor), which belong to the key in Bach's
practice: the leading tone of every minor-key cadence would otherwise count as foreign."""

TIME_TOLERANCE = 1e-6


def voice_names(count: int) -> tuple[str, ...]:
    """The voice each part of a ``count``-part texture sings: top soprano, bottom bass, alto and
    then tenor between."""
    return {1: ("soprano",), 2: ("soprano", "bass"), 3: ("soprano", "alto", "bass")}.get(
        count, ("soprano", "alto", "tenor", "bass")
    )


# -- slices --------------------------------------------------------------------------------------


def _sorted(voice: Voice) -> list[Note]:
    return sorted(voice, key=lambda n: n[0])


def sounding(voice: Sequence[Note], onsets: Sequence[float], time: float) -> int | None:
    """The pitch ``voice`` (sorted by onset, with its ``onsets``) sounds at ``time``, if any."""
    i = bisect.bisect_right(onsets, time + TIME_TOLERANCE) - 1
    if i < 0:
        return None
    onset, duration, pitch = voice[i]
    return pitch if time < onset + duration - TIME_TOLERANCE else None


def slices(texture: Texture, times: Sequence[float]) -> list[Slice]:
    """What every voice sounds at each of ``times``."""
    voices = [_sorted(v) for v in texture]
    onsets = [[n[0] for n in v] for v in voices]
    return [tuple(sounding(v, o, t) for v, o in zip(voices, onsets, strict=True)) for t in times]


def end(texture: Texture) -> float:
    """When the last note of the texture stops."""
    return max((n[0] + n[1] for v in texture for n in v), default=0.0)


def beats(texture: Texture) -> list[float]:
    """Every whole quarter note from the first onset to the end: the beats (chorales are in
    quarter-note metres; a beat where every voice rests is left out)."""
    starts = [n[0] for v in texture for n in v]
    if not starts:
        return []
    times = [float(t) for t in range(int(np.floor(min(starts))), int(np.ceil(end(texture) - TIME_TOLERANCE)))]
    return [t for t, s in zip(times, slices(texture, times), strict=True) if any(p is not None for p in s)]


def change_points(texture: Texture) -> list[float]:
    """Every moment some voice starts a note: the slices where voice leading happens, eighth-note
    passing motion included."""
    return sorted({round(n[0], 6) for v in texture for n in v})


# -- voice leading -------------------------------------------------------------------------------


def parallels(texture: Texture) -> dict[str, int]:
    """Parallel fifths and octaves between any two voices: consecutive change points where both
    voices move in the same direction from one perfect interval to the same one (compound
    intervals and unisons included)."""
    found = {"fifths": 0, "octaves": 0}
    moments = slices(texture, change_points(texture))
    for before, after in itertools.pairwise(moments):
        for i in range(len(before)):
            for j in range(i + 1, len(before)):
                a, b, c, d = before[i], before[j], after[i], after[j]
                if a is None or b is None or c is None or d is None or a == c or b == d:
                    continue
                if (c > a) != (d > b):
                    continue
                first, second = abs(a - b) % 12, abs(c - d) % 12
                if first == second and first in PERFECT:
                    found[PERFECT[first]] += 1
    return found


def in_range(texture: Texture) -> dict[str, float]:
    """Share of each voice's notes inside its usual range (:data:`RANGES`), and over all voices."""
    shares, inside, total = {}, 0, 0
    for name, voice in zip(voice_names(len(texture)), texture, strict=False):
        low, high = RANGES[name]
        ok = sum(low <= n[2] <= high for n in voice)
        shares[name] = ok / len(voice) if voice else 1.0
        inside, total = inside + ok, total + len(voice)
    return {**shares, "all": inside / total if total else 1.0}


# -- key -----------------------------------------------------------------------------------------


def piece_key(texture: Texture) -> key.Key:
    """The key of the whole texture by music21's analysis (Krumhansl-Schmuckler, by duration)."""
    part = stream.Stream()
    for voice in texture:
        for onset, duration, pitch in voice:
            part.insert(onset, note.Note(pitch, quarterLength=duration))
    return part.analyze("key")


def key_pitch_classes(found: key.Key) -> frozenset[int]:
    """The pitch classes of ``found``, with the raised sixth and seventh in minor."""
    tonic = found.tonic.pitchClass
    degrees = (0, 2, 4, 5, 7, 9, 11) if found.mode == "major" else (0, 2, 3, 5, 7, 8, 10, *MINOR_RAISED)
    return frozenset((tonic + d) % 12 for d in degrees)


def in_key(texture: Texture, found: key.Key) -> float:
    """Share of notes in the key or explained as chromatic neighbours: a foreign note a half step
    from the note before or after it in the same voice, when that note is in the key."""
    scale = key_pitch_classes(found)
    ok = total = 0
    for voice in texture:
        pitches = [n[2] for n in _sorted(voice)]
        for i, pitch in enumerate(pitches):
            total += 1
            neighbours = pitches[max(i - 1, 0) : i] + pitches[i + 1 : i + 2]
            ok += pitch % 12 in scale or any(abs(pitch - p) == 1 and p % 12 in scale for p in neighbours)
    return ok / total if total else 1.0


# -- chords and cadences -------------------------------------------------------------------------


@functools.lru_cache(maxsize=8192)
def _root(pitches: tuple[int, ...]) -> int:
    return chord.Chord(list(pitches)).root().pitchClass


def root(moment: Slice) -> int | None:
    """The pitch class of the chord root of a slice by music21's ``Chord.root()``; None if silent."""
    pitches = tuple(sorted({p for p in moment if p is not None}))
    return _root(pitches) if pitches else None


def bass(moment: Slice) -> int | None:
    """The lowest voice's pitch in a slice (None if the bass rests)."""
    return moment[-1]


def _intervals(moment: Slice, tonic: int) -> set[int]:
    return {(p - tonic) % 12 for p in moment if p is not None}


def cadence(before: Slice, final: Slice, found: key.Key) -> str | None:
    """The kind of cadence from chord ``before`` to ``final``, or None.

    Authentic: a root-position major chord (a dominant, seventh allowed) to a root-position triad a
    fifth below, in whatever key the phrase has reached; half: any chord to a root-position major
    triad on the dominant of the piece's key or of its relative key; plagal: a root-position chord
    a fourth above to a root-position triad.
    """
    first, last = root(before), root(final)
    if last is None or bass(final) is None or bass(final) % 12 != last:
        return None
    ending = _intervals(final, last)
    triad = ending <= {0, 3, 4, 7} and bool(ending & {3, 4})
    in_root_position = first is not None and bass(before) is not None and bass(before) % 12 == first
    leading = _intervals(before, first) if first is not None else set()
    if in_root_position and triad and (first - last) % 12 == 7 and 4 in leading and 3 not in leading:
        return "authentic"
    dominants = {(found.tonic.pitchClass + 7) % 12, (found.relative.tonic.pitchClass + 7) % 12}
    if ending <= {0, 4, 7} and 4 in ending and last in dominants:
        return "half"
    if in_root_position and triad and (first - last) % 12 == 5:
        return "plagal"
    return None


def cadences(texture: Texture, phrase_ends: Sequence[float], found: key.Key) -> list[str | None]:
    """The cadence at each phrase end (the onset, in quarters, of a melody note under a fermata).

    The chord before is the one at the last change point before the phrase end or, should a passing
    note stand there, the one on the beat before; the chord of arrival is the one that comes with
    the phrase end or, should a suspension stand there, the one at the last change point while the
    note sounds. The first pair that makes a cadence decides, for every harmonization alike.
    """
    points = change_points(texture)
    top = _sorted(texture[0]) if texture else []
    kinds = []
    for t in phrase_ends:
        held = [n[0] + n[1] for n in top if abs(n[0] - t) < TIME_TOLERANCE]
        stop = held[0] if held else t + TIME_TOLERANCE
        earlier = [p for p in points if p < t - TIME_TOLERANCE]
        during = [p for p in points if t - TIME_TOLERANCE <= p < stop - TIME_TOLERANCE]
        if not earlier:
            kinds.append(None)
            continue
        beat = max(float(math.ceil(t - TIME_TOLERANCE) - 1), earlier[0])
        last_point, last_beat, arrival, resolved = slices(
            texture, [earlier[-1], beat, t, during[-1] if during else t]
        )
        pairs = [(b, f) for f in (arrival, resolved) for b in (last_point, last_beat)]
        kinds.append(next((k for b, f in pairs if (k := cadence(b, f, found))), None))
    return kinds


# -- agreement with a reference ------------------------------------------------------------------


def agreement(texture: Texture, reference: Texture) -> dict[str, float]:
    """Share of the reference's beats where ``texture`` has the same bass pitch class, and the
    same chord root; a beat the texture leaves silent disagrees."""
    times = beats(reference)
    ours, theirs = slices(texture, times), slices(reference, times)
    basses = [(bass(o), bass(r)) for o, r in zip(ours, theirs, strict=True) if bass(r) is not None]
    roots = [(root(o), root(r)) for o, r in zip(ours, theirs, strict=True) if root(r) is not None]

    def share(pairs: list[tuple[int | None, int | None]]) -> float:
        same = sum(a is not None and b is not None and a % 12 == b % 12 for a, b in pairs)
        return same / len(pairs) if pairs else 0.0

    return {"bass": share(basses), "root": share(roots)}


def melody_kept(melody: Voice, texture: Texture) -> float:
    """Share of the melody's notes found unchanged (onset, duration and pitch) in the top voice."""
    top = {(round(n[0], 4), round(n[1], 4), n[2]) for n in texture[0]} if texture else set()
    kept = sum((round(n[0], 4), round(n[1], 4), n[2]) in top for n in melody)
    return kept / len(melody) if melody else 1.0


# -- the chance baseline -------------------------------------------------------------------------


def random_harmonization(melody: Voice, voices: int = 4, seed: int = 0) -> list[list[Note]]:
    """The melody over random notes: under each melody note, each lower voice takes a note of the
    melody's key (music21's analysis of the melody alone) drawn evenly from its usual range. What
    agreement with Bach a harmonizer gets by chance, knowing the key and the voices' ranges."""
    rng = np.random.default_rng(seed)
    scale = key_pitch_classes(piece_key([melody]))
    lower = []
    for name in voice_names(voices)[1:]:
        low, high = RANGES[name]
        choices = [p for p in range(low, high + 1) if p % 12 in scale]
        lower.append([(onset, duration, int(rng.choice(choices))) for onset, duration, _ in melody])
    return [list(melody), *lower]


# -- one harmonization's figures -----------------------------------------------------------------


def figures(texture: Texture, melody: Voice, phrase_ends: Sequence[float], reference: Texture) -> dict:
    """Every figure of one harmonization of ``melody`` beside ``reference`` (Bach's)."""
    found = piece_key(texture)
    kinds = cadences(texture, phrase_ends, found)
    fifths_octaves = parallels(texture)
    count = len(beats(texture))
    return {
        "beats": count,
        "key": str(found),
        "melody_kept": melody_kept(melody, texture),
        **{f"agreement_{k}": v for k, v in agreement(texture, reference).items()},
        "parallels": fifths_octaves,
        "parallels_per_100_beats": 100 * sum(fifths_octaves.values()) / count if count else 0.0,
        "in_range": in_range(texture),
        "in_key": in_key(texture, found),
        "phrase_ends": len(phrase_ends),
        "cadences": {k: kinds.count(k) for k in ("authentic", "half", "plagal")},
        "cadence_share": sum(k is not None for k in kinds) / len(kinds) if kinds else 0.0,
    }
