"""What people hear and see: audio through FluidSynth, and the piano-roll picture.

- :mod:`composer.render.audio` finds a SoundFont and renders a MIDI file to Ogg Opus or MP3;
- :mod:`composer.render.synth` runs FluidSynth's library in this process, sample for sample as
  the ``fluidsynth`` command renders;
- :mod:`composer.render.audio_stream` encodes Opus while FluidSynth renders (the library, or the
  command through a pipe);
- :mod:`composer.render.opus` writes Ogg Opus straight from libopus;
- :mod:`composer.render.soundfont` reads which presets can reach FluidSynth's chorus, so a piece
  that cannot be heard through it is rendered without it;
- :mod:`composer.render.live` plays piece after piece as a steady stream of 20 ms PCM frames,
  for a voice connection;
- :mod:`composer.render.system_libsndfile` loads Debian's libsndfile for MP3 and WAV;
- :mod:`composer.render.pianoroll` draws the notes, with the time axis following the tempo map.
"""
