"""Which FluidSynth effects a piece can be heard through, read from the SoundFont and the MIDI.

FluidSynth runs its chorus on every render, about a sixth of the render's time, yet a note only
reaches the chorus when its preset sends to it (the SoundFont's chorus-send generator, or a
modulator aimed at it) or the file raises controller 93 (chorus depth). Most General MIDI presets
never do: FluidR3_GM's pianos, for one, come out sample for sample the same with the chorus
off. So the chorus is switched off for exactly those pieces, and kept wherever it can be heard.

SoundFont 2 is a RIFF file; only its preset and instrument tables are read (``phdr``, ``pbag``,
``pgen``, ``pmod``, ``inst``, ``ibag``, ``igen``, ``imod``), never the samples.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from pathlib import Path

from composer.midi.smf import (
    CONTROL_CHANGE,
    DRUM_CHANNEL,
    NOTE_ON,
    PROGRAM_CHANGE,
    SYSEX,
    MidiFile,
    parse_smf,
)

CHORUS_SEND = 15
"""The SoundFont generator (and modulator destination) for the chorus send, in 0.1% units."""
_INSTRUMENT = 41
_BANK_SELECT, _CHORUS_DEPTH, _NRPN_LSB, _NRPN_MSB = 0, 93, 98, 99
_PERCUSSION_BANK = 128
_RECORD = {"phdr": 38, "pbag": 4, "pgen": 4, "pmod": 10, "inst": 22, "ibag": 4, "igen": 4, "imod": 10}


def chorus_presets(soundfont: Path) -> frozenset[tuple[int, int]] | None:
    """The ``(bank, program)`` presets of ``soundfont`` that can send to the chorus; ``None`` when
    the file cannot be read as a SoundFont 2 (then nothing is assumed)."""
    stat = soundfont.stat()
    return _chorus_presets(str(soundfont), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _chorus_presets(path: str, _mtime: int, _size: int) -> frozenset[tuple[int, int]] | None:
    try:
        tables = _preset_tables(Path(path))
    except (OSError, ValueError, struct.error):
        return None
    gens, mods = tables["igen"], tables["imod"]
    chorused_instruments = {
        i
        for i in range(len(tables["inst"]) - 1)
        if _sends(tables["ibag"], gens, mods, tables["inst"][i][1], tables["inst"][i + 1][1])
    }
    found = set()
    headers, bags = tables["phdr"], tables["pbag"]
    for i in range(len(headers) - 1):  # the last header is the terminal record
        program, bank, first, last = headers[i][1], headers[i][2], headers[i][3], headers[i + 1][3]
        if _sends(bags, tables["pgen"], tables["pmod"], first, last) or any(
            amount in chorused_instruments
            for bag in range(first, last)
            for oper, amount in _generators(bags, tables["pgen"], bag)
            if oper == _INSTRUMENT
        ):
            found.add((bank, program))
    return frozenset(found)


def chorus_heard(midi: MidiFile, presets: frozenset[tuple[int, int]]) -> bool:
    """Whether any note of ``midi`` can reach the chorus with these chorus-sending presets.

    Controller 93, NRPNs (which can move any generator) and system-exclusive messages (a GS or
    XG reset can set chorus levels) count as heard; so does a bank select, whatever it selects.
    """
    programs = dict.fromkeys(range(16), 0)
    for track in midi.tracks:
        for _tick, raw in sorted(track.messages, key=lambda message: message[0]):
            status = raw[0]
            if status == SYSEX or status == 0xF7:
                return True
            kind, channel = status & 0xF0, status & 0x0F
            if kind == CONTROL_CHANGE and len(raw) > 2:
                if raw[1] in (_BANK_SELECT, _NRPN_LSB, _NRPN_MSB) or (raw[1] == _CHORUS_DEPTH and raw[2]):
                    return True
            elif kind == PROGRAM_CHANGE and len(raw) > 1:
                programs[channel] = raw[1]
            elif kind == NOTE_ON and len(raw) > 2 and raw[2]:
                bank = _PERCUSSION_BANK if channel == DRUM_CHANNEL else 0
                if (bank, programs[channel]) in presets:
                    return True
    return False


def parse_quietly(midi: Path) -> MidiFile | None:
    """The MIDI file as values, or ``None`` when it cannot be read here (FluidSynth, which plays
    it next, will then say what is wrong with it)."""
    try:
        return parse_smf(midi.read_bytes())
    except Exception:
        return None


def chorus_needed(soundfont: Path, midi: MidiFile | None) -> bool:
    """Whether the chorus could be heard in this piece (true whenever either file is unreadable)."""
    if midi is None:
        return True
    presets = chorus_presets(soundfont)
    return presets is None or chorus_heard(midi, presets)


CHORUS_OFF = ("-C", "0")
"""The ``fluidsynth`` options that leave the chorus out."""


def effect_options(soundfont: Path, midi: MidiFile | None) -> list[str]:
    """``fluidsynth`` options that leave out effects nobody would hear in this piece (may be empty)."""
    return [] if chorus_needed(soundfont, midi) else [*CHORUS_OFF]


def _sends(bags: list[tuple], gens: list[tuple], mods: list[tuple], first: int, last: int) -> bool:
    """Whether any zone from bag ``first`` to ``last`` sets a chorus send or aims a modulator at it."""
    for bag in range(first, last):
        if any(oper == CHORUS_SEND and amount > 0 for oper, amount in _generators(bags, gens, bag)):
            return True
        if any(mods[m][2] == CHORUS_SEND for m in range(bags[bag][1], bags[bag + 1][1])):
            return True
    return False


def _generators(bags: list[tuple], gens: list[tuple], bag: int) -> list[tuple[int, int]]:
    return [gens[g] for g in range(bags[bag][0], bags[bag + 1][0])]


def _preset_tables(path: Path) -> dict[str, list[tuple]]:
    """The ``pdta`` tables as lists of records: preset headers ``(name, program, bank, bag)``,
    instrument headers ``(name, bag)``, bags ``(first generator, first modulator)``, generators
    ``(operator, amount)`` and modulators ``(source, amount, destination)``."""
    with path.open("rb") as file:
        riff, _size, form = struct.unpack("<4sI4s", file.read(12))
        if riff != b"RIFF" or form != b"sfbk":
            raise ValueError("not a SoundFont 2 file")
        while True:
            head = file.read(12)
            if len(head) < 12:
                raise ValueError("no preset data")
            kind, size, name = struct.unpack("<4sI4s", head)
            if kind == b"LIST" and name == b"pdta":
                data = file.read(size - 4)
                break
            file.seek(size - 4 + (size & 1), 1)
    tables: dict[str, list[tuple]] = {}
    pos = 0
    while pos + 8 <= len(data):
        kind, size = struct.unpack_from("<4sI", data, pos)
        name, body = kind.decode("latin-1"), data[pos + 8 : pos + 8 + size]
        if name in _RECORD:
            width = _RECORD[name]
            tables[name] = [_record(name, body[at : at + width]) for at in range(0, size - width + 1, width)]
        pos += 8 + size + (size & 1)
    if set(tables) != set(_RECORD):
        raise ValueError("incomplete preset data")
    return tables


def _record(name: str, raw: bytes) -> tuple:
    if name == "phdr":
        program, bank, bag = struct.unpack_from("<HHH", raw, 20)
        return raw[:20], program, bank, bag
    if name == "inst":
        return raw[:20], struct.unpack_from("<H", raw, 20)[0]
    if name in ("pgen", "igen"):
        oper, amount = struct.unpack("<Hh", raw)
        return oper, amount
    if name in ("pmod", "imod"):
        source, destination, amount = struct.unpack_from("<HHh", raw)
        return source, amount, destination
    return struct.unpack("<HH", raw)
