"""Choosing the events: sampling from the network's logits, one step for a whole batch of pieces.

- :mod:`composer.generation.sampling` trims and draws from one distribution, with the loop guard;
- :mod:`composer.generation.generate` steps a batch of pieces to their endings;
- :mod:`composer.generation.batcher` gathers the pieces of concurrent requests into one batch;
- :mod:`composer.generation.steering` leans a continuation's chords towards the user's piece;
- :mod:`composer.generation.expression` shapes a new piece's dynamics and final ritardando;
- :mod:`composer.generation.features` describes a whole piece by key-free, tempo-free figures;
- :mod:`composer.generation.critic` keeps, of several candidates for a new piece, the one its
  style's critic finds likeliest real.
"""
