"""Real pieces through the whole encoding and back: music21's corpus and its test MIDI files."""

from __future__ import annotations

from pathlib import Path

import music21
import pretty_midi
import pytest

from composer.events import events_from_notes, notes_from_events
from composer.midi.read import read_score
from composer.midi.timeline import Timeline
from composer.midi.write import piece_midi, write_midi_file
from composer.model.vocabulary import Vocabulary

TEST_MIDI = Path(music21.__file__).parent / "midi" / "testPrimitive"
CORPUS = Path(music21.__file__).parent / "corpus"
FILES = [
    TEST_MIDI / "test03.mid",
    TEST_MIDI / "test08.mid",
    TEST_MIDI / "test11.mid",
    CORPUS / "bach" / "bwv66.6.mxl",
    CORPUS / "bach" / "bwv269.mxl",
    CORPUS / "schumann_clara" / "opus17" / "movement3.xml",
]


@pytest.mark.parametrize("path", [f for f in FILES if f.exists()], ids=lambda p: p.name)
def test_events_survive_midi_and_vocabulary(path, tmp_path):
    events = events_from_notes(read_score(path).notes)
    assert len(events) > 10
    # Through a MIDI file written by the composer and read back.
    midi = piece_midi(notes_from_events(events), Timeline.constant(90), program=0)
    written = write_midi_file(midi, tmp_path / "out.mid")
    assert events_from_notes(read_score(written).notes) == events
    # The file is a proper MIDI file for other readers too.
    pm = pretty_midi.PrettyMIDI(str(written))
    assert sum(len(i.notes) for i in pm.instruments) == sum(len(e.pitches) for e in events)
    # Through the token vocabulary built from the piece itself.
    vocab = Vocabulary.build([events])
    encoded = vocab.encode(events)
    assert encoded.unknown == 0
    assert vocab.decode(encoded.rows) == events
