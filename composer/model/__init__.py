"""The network and what travels with it.

- :mod:`composer.model.vocabulary` turns events into token ids (one row of four per event);
- :mod:`composer.model.network` defines the Keras network with the functional API;
- :mod:`composer.model.artifact` saves and loads a model with its vocabulary and training record
  in one ``.cadenza`` file, so the two can never drift apart;
- :mod:`composer.model.stepper` runs the trained weights one numpy step per event, for generation.
"""
