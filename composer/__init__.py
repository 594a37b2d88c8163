"""Cadenza's musical core: compose and continue pieces with an LSTM, no Discord needed.

Data flow, one package per job:

- :mod:`composer.midi` reads a MIDI, MusicXML or ABC file safely into a :class:`~composer.events.Score`
  that keeps the file itself, every message as it was, and writes new pieces and continuations;
- :mod:`composer.events` merges notes into one :class:`~composer.events.Event` per onset and back,
  :mod:`composer.keys` names keys and picks one a style is often in;
- :mod:`composer.model` turns events into token ids, defines the network, saves and loads it with
  its vocabulary in one file, and steps it in numpy;
- :mod:`composer.generation` chooses the events, for a batch of pieces at once;
- :mod:`composer.render` makes the audio (FluidSynth) and the picture;
- :mod:`composer.service` ties it together behind ``Composer.compose`` (async) and
  ``Composer.compose_sync``; :mod:`composer.cli` is the command line;
- :mod:`composer.queue` spreads the composing over worker processes through Redis.
"""

from composer.errors import ComposerError, InputFileError, InputLimitError, InvalidOptionError, ModelError

__all__ = ["ComposerError", "InputFileError", "InputLimitError", "InvalidOptionError", "ModelError"]
