"""What travels through the job queue: a request as plain values, a finished piece with its files.

Plain dicts, bytes and numbers, so a bot and workers of slightly different versions still
understand each other. A piece travels with its files (MIDI, picture, audio: at most a few MB),
so the bot needs no disk shared with the workers; the worker sends them, the bot writes them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from composer.errors import InputLimitError
from composer.service import ComposeRequest, Composition

COMPOSE = "compose"
"""The name of the job that composes one piece."""

_FILES = ("midi", "audio", "picture")


def request_to_job(request: ComposeRequest, max_primer_bytes: int) -> dict[str, Any]:
    """The request's fields, with the primer read into bytes and held to the workers' size limit."""
    fields = {f.name: getattr(request, f.name) for f in dataclasses.fields(ComposeRequest)}
    primer = request.primer
    if isinstance(primer, Path):
        primer = primer.read_bytes()
    if primer is not None and len(primer) > max_primer_bytes:
        name = request.primer_name or "Your piece"
        raise InputLimitError(f"{name} is {len(primer):,} bytes; the limit is {max_primer_bytes:,} bytes.")
    fields["primer"] = primer
    return fields


def request_from_job(fields: dict[str, Any]) -> ComposeRequest:
    """The request a job carries, checked again as the composer checks every request."""
    return ComposeRequest(**fields)


def piece_to_result(piece: Composition, **about: Any) -> dict[str, Any]:
    """A finished piece with the bytes of its files; ``about`` says who made it (worker, try)."""
    values = {f.name: getattr(piece, f.name) for f in dataclasses.fields(Composition) if f.name not in _FILES}
    files = {what: (path.name, path.read_bytes()) for what in _FILES if (path := getattr(piece, what))}
    return {"piece": values, "files": files, **about}


def piece_from_result(result: dict[str, Any], out_dir: str | Path) -> Composition:
    """Write a result's files into ``out_dir`` and return the piece as the composer would."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path | None] = dict.fromkeys(_FILES)
    for what, (name, data) in result["files"].items():
        paths[what] = out_dir / Path(name).name  # only a file name: never a path from elsewhere
        paths[what].write_bytes(data)
    return Composition(**paths, **result["piece"])
