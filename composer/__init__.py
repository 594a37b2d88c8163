"""Cadenza's musical core: compose and continue pieces with an LSTM, no Discord needed.

Data flow, one module per job:

- :mod:`composer.midi` reads a MIDI, MusicXML or ABC file safely into a :class:`~composer.events.Score`
  that keeps the file itself, every message as it was (``composer.midi.read.read_score``);
- :mod:`composer.events` merges its notes into one :class:`~composer.events.Event` per onset and back;
- :mod:`composer.vocabulary` turns events into token ids, the way the model was trained;
- :mod:`composer.model` defines the Keras network, :mod:`composer.artifact` saves and loads it with
  its vocabulary in one file;
- :mod:`composer.stepper` runs it one step per event, :mod:`composer.sampling` and
  :mod:`composer.generate` choose the events;
- :mod:`composer.midi.arrange` and :mod:`composer.midi.write` write the MIDI (a continuation is
  the user's file plus a track), :mod:`composer.audio` and :mod:`composer.pianoroll` the audio and
  the picture;
- :mod:`composer.service` ties it together behind ``Composer.compose`` (async) and
  ``Composer.compose_sync``; :mod:`composer.cli` is the command line.
"""

from composer.errors import ComposerError, InputFileError, InputLimitError, InvalidOptionError, ModelError

__all__ = ["ComposerError", "InputFileError", "InputLimitError", "InvalidOptionError", "ModelError"]
