"""The files of finished songs, kept under ``<data dir>/songs/<request id>/`` for ``!replay``.

A song is composed into a scratch folder and moved into place in one rename, so a folder that
exists is complete. The total size is capped (``BOT_SONG_STORAGE_MB``): after each post the
oldest posted songs' files are removed until the rest fit; their requests stay in the history.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

from composer.service import Composition

_FILES = ("midi", "audio", "picture")


class SongShelf:
    """Where songs' files are kept, and how much room they may take."""

    def __init__(self, root: Path, cap_bytes: int) -> None:
        self.root = root
        self.cap_bytes = cap_bytes

    def folder(self, request_id: int) -> Path:
        """The folder of a kept song."""
        return self.root / str(request_id)

    def scratch(self, request_id: int) -> Path:
        """An empty folder to compose a song into (what an interrupted try left there is removed)."""
        path = self.root / f".{request_id}.partial"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def keep(self, request_id: int, piece: Composition) -> dict[str, Any]:
        """Move a song composed in :meth:`scratch` into place; returns it as JSON-ready values."""
        folder = self.folder(request_id)
        shutil.rmtree(folder, ignore_errors=True)
        piece.midi.parent.rename(folder)
        values = dataclasses.asdict(piece)
        for name in _FILES:
            values[name] = values[name].name if values[name] is not None else None
        return values

    def load(self, request_id: int, values: dict[str, Any]) -> Composition | None:
        """The kept song as a :class:`Composition`, or ``None`` when its files are gone."""
        folder = self.folder(request_id)
        paths = {name: folder / values[name] if values[name] else None for name in _FILES}
        if not all(path.is_file() for path in paths.values() if path is not None):
            return None
        return Composition(**(values | paths | {"warnings": tuple(values["warnings"])}))

    def size(self) -> int:
        """Bytes taken by every kept song."""
        if not self.root.is_dir():
            return 0
        return sum(path.stat().st_size for path in self.root.rglob("*") if path.is_file())

    def remove(self, request_id: int) -> int:
        """Delete a song's files; returns the bytes freed."""
        folder = self.folder(request_id)
        freed = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
        shutil.rmtree(folder, ignore_errors=True)
        return freed
