"""Music files in and out, with the user's file kept exactly.

- :mod:`composer.midi.checks` tells the format of a file from its content and vets MIDI under
  the limits; :mod:`composer.midi.smf` reads and writes Standard MIDI Files byte for byte;
- :mod:`composer.midi.timeline` maps ticks to beats and seconds through the tempo map and says
  which tempo, meter and key are in force; :mod:`composer.midi.notes` pairs a file's notes into
  the :class:`~composer.events.Score` the model hears, the file itself kept alongside;
- :mod:`composer.midi.streams` does the same for music21 scores (MusicXML, ABC, the corpus) and
  :mod:`composer.midi.read` puts it together behind ``read_score``, music21 in a bounded child;
- :mod:`composer.midi.write` writes new pieces, and continuations as the user's file plus a track.
"""
