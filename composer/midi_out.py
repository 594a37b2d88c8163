"""Writing a :class:`~composer.events.Score` to a Standard MIDI File with music21.

Each part becomes a music21 ``Part`` with its General MIDI instrument; notes that start and end
together at one loudness become a ``Chord``. The first part carries the tempo and time
signature. The file appears whole or not at all.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from composer.events import Score

if TYPE_CHECKING:
    from music21 import stream


def to_stream(score: Score) -> stream.Score:
    """The music21 ``stream.Score`` for ``score``: one part per :class:`~composer.events.Part`."""
    from music21 import chord, instrument, meter, note, pitch, stream
    from music21 import tempo as m21tempo

    grouped: dict[int, dict[tuple[float, float, int], list[int]]] = defaultdict(lambda: defaultdict(list))
    for n in score.notes:
        grouped[n.part][(n.start, n.end, n.velocity)].append(n.pitch)
    result = stream.Score()
    for index, part_info in enumerate(score.parts):
        part = stream.Part(id=f"part{index}")
        part.partName = part_info.name or None
        part.insert(0, instrument.instrumentFromMidiProgram(part_info.program))
        if index == 0:
            part.insert(0, m21tempo.MetronomeMark(number=round(score.tempo, 2)))
            part.insert(0, meter.TimeSignature(f"{score.time_signature[0]}/{score.time_signature[1]}"))
        for (start, end, velocity), pitches in sorted(grouped[index].items()):
            if len(pitches) == 1:
                element = note.Note(pitches[0], quarterLength=end - start)
            else:
                # Pitch objects, not ints: from ints music21 searches every enharmonic spelling,
                # which took 90% of the writing time and means nothing in a MIDI file.
                element = chord.Chord(
                    [pitch.Pitch(midi=p) for p in sorted(pitches)], quarterLength=end - start
                )
            element.volume.velocity = velocity
            part.coreInsert(start, element)
        part.coreElementsChanged()
        result.insert(0, part)
    return result


def write_midi(score: Score, path: str | Path) -> Path:
    """Write ``score`` as a type-1 MIDI file with tempo, programs and velocities."""
    from music21 import midi

    path = Path(path)
    midi_file = midi.translate.music21ObjectToMidiFile(to_stream(score))
    partial = path.with_name(f".{path.name}.partial")
    try:
        midi_file.open(str(partial), "wb")
        midi_file.write()
        midi_file.close()
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path
