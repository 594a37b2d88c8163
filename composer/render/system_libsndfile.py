"""``soundfile`` bound to the system's libsndfile when the machine has one.

The soundfile wheel bundles its own libsndfile, and that build encodes Opus about four times
slower than Debian's (measured here: 205 s of stereo music in 8.0 s against 1.9 s), which made
encoding the slowest stage of a composition. soundfile loads its bundled copy from the module
``_soundfile_data`` and falls back to the system library when that import fails, so the module
is marked as absent before soundfile is first imported. Where no system libsndfile exists, the
bundled one is used as before.
"""

from __future__ import annotations

import ctypes.util
import sys

if "soundfile" not in sys.modules and ctypes.util.find_library("sndfile"):
    sys.modules.setdefault("_soundfile_data", None)  # type: ignore[arg-type]

import soundfile  # after the choice above

__all__ = ["soundfile"]
