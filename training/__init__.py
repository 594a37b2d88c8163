"""Training: turn a folder of MIDI files or music21's bundled corpus into a model artifact.

Data flows one way: :mod:`training.sources` parses files into pieces of events,
:mod:`training.dataset` encodes and windows them, :mod:`training.train` fits the network from
:mod:`composer.model.network` and exports a :mod:`composer.model.artifact` that the composer loads.
"""
