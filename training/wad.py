"""The music inside Doom WAD files: Freedoom's game-music tracks as Standard MIDI Files.

Debian's ``freedoom`` package (BSD licence) ships two WADs holding 67 General MIDI tracks made
in sequencers, with tempo changes, many channels and drums: real-world MIDI that may be kept and
shipped. A WAD is a header, lumps, and a directory of (offset, size, eight-byte name); music
lumps are named ``D_...`` and these hold MIDI files as they are.
"""

from __future__ import annotations

import struct
from pathlib import Path

FREEDOOM_WADS = (Path("/usr/share/games/doom/freedoom1.wad"), Path("/usr/share/games/doom/freedoom2.wad"))


def music_lumps(wad: Path) -> dict[str, bytes]:
    """The MIDI music lumps of ``wad``, by lump name; ValueError for a file that is not a WAD."""
    data = wad.read_bytes()
    if len(data) < 12 or data[:4] not in (b"IWAD", b"PWAD"):
        raise ValueError(f"{wad} is not a WAD file")
    count, directory = struct.unpack_from("<ii", data, 4)
    if count < 0 or directory < 12 or directory + 16 * count > len(data):
        raise ValueError(f"{wad} has a damaged directory")
    found = {}
    for i in range(count):
        position, size, raw = struct.unpack_from("<ii8s", data, directory + 16 * i)
        name = raw.split(b"\0")[0].decode("ascii", "replace")
        lump = data[position : position + size] if position >= 0 and position + size <= len(data) else b""
        if name.startswith("D_") and lump[:4] == b"MThd":
            found[name] = lump
    return found


def extract_freedoom(folder: Path) -> list[Path]:
    """Write Freedoom's music tracks into ``folder`` (once) and return their paths."""
    wads = [w for w in FREEDOOM_WADS if w.is_file()]
    if not wads:
        raise ValueError("Freedoom's music needs Debian's freedoom package: apt-get install freedoom")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for wad in wads:
        for name, data in music_lumps(wad).items():
            path = folder / f"{wad.stem}-{name}.mid"
            if not path.is_file() or path.read_bytes() != data:
                path.write_bytes(data)
            paths.append(path)
    return sorted(paths)
