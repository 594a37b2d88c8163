"""Harmonize a melody: the model writes the voices under a tune that stays exactly as given.

Data flow: text or a file becomes a :class:`~composer.harmonize.melody.Melody` (notes in quarter
notes, phrase ends, key); :mod:`composer.harmonize.decode` draws chords under it with the network
(constrained decoding, several candidates ranked by the network's own likelihood);
:mod:`composer.harmonize.voices` splits the chords into voices. Nothing here touches files,
Discord or the service: :func:`harmonize` is a pure function of a stepper, a vocabulary and a melody.

``harmonize(stepper, vocabulary, melody, *, voices=4, style=0, seed=0, temperature=0.5,
candidates=8) -> Harmonization``

- ``stepper``, ``vocabulary``: the loaded model (``composer.stepper.Stepper`` and its
  ``composer.vocabulary.Vocabulary``).
- ``melody``: a ``Melody``, e.g. ``Melody.from_notes([(onset_quarters, duration_quarters,
  midi_pitch), ...], phrase_ends=[False, ..., True])``; without ``phrase_ends`` phrases end at
  rests, long notes and the last note.
- ``voices``: parts in all, the melody included, 2 to 4. ``style``: style id of the model.
  ``seed``: the same seed and options give the same harmonization. ``temperature``: 0.05 to 3.
  ``candidates``: how many harmonizations are drawn; the likeliest is returned. ``beam``: when
  above 0, a beam search of that width instead of drawing (deterministic).

``Harmonization.melody`` is the melody's notes and ``Harmonization.voices`` the lower voices,
highest first (alto, tenor, bass for four), each a list of ``VoiceNote(onset, duration, pitch)``
with times in quarter notes from the melody's own zero; ``log_likelihood`` is the network's
log-probability of the chosen harmonization per melody note; ``key`` the key it was written in.
"""

from __future__ import annotations

from dataclasses import dataclass

from composer.errors import InvalidOptionError
from composer.harmonize.decode import beam_search, decode
from composer.harmonize.melody import Melody, MelodyNote
from composer.harmonize.voices import VoiceNote, split_voices
from composer.keys import Key
from composer.stepper import Stepper
from composer.vocabulary import Vocabulary

__all__ = ["HARMONY_TEMPERATURE", "Harmonization", "Melody", "MelodyNote", "VoiceNote", "harmonize"]

MIN_VOICES, MAX_VOICES = 2, 4
DEFAULT_CANDIDATES = 8
"""Candidates drawn per harmonization: see bench/RESULTS.md for what more candidates buy."""
HARMONY_TEMPERATURE = 0.5
"""Default temperature of a harmonization, lower than a new piece's: on held-out chorales it came
closer to Bach's own chords than 0.8 did, and likelier to the network (bench/RESULTS.md)."""
VOICE_NAMES = {2: ("Melody", "Bass"), 3: ("Melody", "Alto", "Bass"), 4: ("Soprano", "Alto", "Tenor", "Bass")}
"""Track names of the parts, melody first."""


@dataclass(frozen=True)
class Harmonization:
    """A melody and the voices written under it (see the package docstring)."""

    melody: list[VoiceNote]
    voices: list[list[VoiceNote]]
    log_likelihood: float
    key: Key
    candidates: tuple[float, ...] = ()
    """Every candidate's (or the beam's survivors') log-likelihood per melody note, best first."""

    @property
    def parts(self) -> list[list[VoiceNote]]:
        """The melody and the voices, top to bottom."""
        return [self.melody, *self.voices]

    @property
    def names(self) -> tuple[str, ...]:
        """A name per part, top to bottom."""
        return VOICE_NAMES[len(self.parts)]


def check_voices(voices: int) -> None:
    """Refuse a number of voices outside 2-4 with a friendly message."""
    if isinstance(voices, bool) or not isinstance(voices, int) or not MIN_VOICES <= voices <= MAX_VOICES:
        raise InvalidOptionError(
            f"Voices means parts in all, the melody included: {MIN_VOICES} to {MAX_VOICES}, not {voices}."
        )


def harmonize(
    stepper: Stepper,
    vocabulary: Vocabulary,
    melody: Melody,
    *,
    voices: int = 4,
    style: int = 0,
    seed: int = 0,
    temperature: float = HARMONY_TEMPERATURE,
    candidates: int = DEFAULT_CANDIDATES,
    beam: int = 0,
) -> Harmonization:
    """The likeliest of ``candidates`` harmonizations of ``melody`` in ``voices`` parts; with
    ``beam``, the likeliest a beam search of that width finds instead (no sampling: ``seed``,
    ``temperature`` and ``candidates`` do not matter then)."""
    check_voices(voices)
    if candidates < 1 or beam < 0:
        raise InvalidOptionError(f"Draw at least one candidate, not {candidates}, and a beam of 0 or more.")
    key = melody.key
    if beam:
        drawn = beam_search(stepper, vocabulary, melody, voices=voices, key=key, style=style, width=beam)
    else:
        drawn = decode(
            stepper,
            vocabulary,
            melody,
            voices=voices,
            key=key,
            style=style,
            seed=seed,
            temperature=temperature,
            candidates=candidates,
        )
    per_note = len(melody.notes)
    best = drawn[0]
    return Harmonization(
        melody=[VoiceNote(n.onset, n.duration, n.pitch) for n in melody.notes],
        voices=split_voices(melody, best, voices),
        log_likelihood=float(best.log_likelihood / per_note),
        key=key,
        candidates=tuple(float(d.log_likelihood / per_note) for d in drawn),
    )
