"""Turn a MIDI file into a small audio file that Discord plays inline (OGG/Opus or MP3).

Discord shows a player for ``.ogg`` and ``.mp3`` attachments but not for ``.mid``, so a listener
would otherwise have to download the MIDI and open it elsewhere. The pipeline:

1. FluidSynth renders the MIDI with a General MIDI SoundFont into a 32-bit float WAV in a
   temporary folder (float, so a dense passage can never clip before we normalise).
2. The WAV is scanned in blocks: its peak and where the sound really ends. FluidSynth keeps
   rendering a few seconds of near-silence after the last note; that is trimmed, keeping a short
   ring-out, and the cut gets a brief fade so it cannot click.
3. The samples are scaled so the peak sits at ``target_peak_db`` (FluidSynth's default gain
   renders quietly, peaks of -5 to -20 dBFS) and encoded with libsndfile, through ``soundfile``,
   at a bitrate that keeps the file under the upload limit even for a long piece.
4. The encoder writes to a temporary name next to the destination, which is renamed into place
   only once complete and within the size budget, so a half-written or oversized file is never
   visible (and an existing file is left alone when audio fails).

Everything works in blocks, so memory stays small (a few MB) whatever the length of the piece;
only the temporary WAV (about 12 MB a minute at 24 kHz) lives on disk while we work.

Audio is an extra: when it cannot be made (no FluidSynth, no SoundFont, a failed render) the
caller gets :class:`AudioUnavailable` with a reason, turns it into a warning and still delivers the
MIDI file and the picture.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from composer.midi.smf import MidiFile
from composer.midi.timeline import Timeline
from composer.render.soundfont import CHORUS_OFF, chorus_needed, parse_quietly
from composer.render.system_libsndfile import soundfile as sf

if TYPE_CHECKING:
    from composer.render.audio_stream import FrameSource

log = logging.getLogger(__name__)

SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)
"""Where Debian/Ubuntu (``fluid-soundfont-gm``) and Arch (``soundfont-fluid``) put a GM SoundFont."""

FORMATS = ("ogg", "mp3")
"""Output formats Discord plays inline: OGG/Opus (smaller, better) and MP3 (plays everywhere)."""

DEFAULT_BITRATE_KBPS = {"ogg": 96, "mp3": 160}
"""Target bitrates: Opus at 96 kbit/s is near-transparent for music; MP3 needs more for the same."""

MIN_BITRATE_KBPS = {"ogg": 24, "mp3": 32}
"""The least we go down to when a long piece must fit :data:`MAX_AUDIO_BYTES`."""

MAX_AUDIO_BYTES = 9_500_000
"""Upload budget for the audio file: Discord's limit without Nitro is 10 MB, minus some margin."""

OPUS_SAMPLE_RATES = (8000, 12000, 16000, 24000, 48000)
"""The only rates libsndfile's Opus encoder accepts (it does not resample)."""

ON_DEMAND = ("-o", "synth.dynamic-sample-loading=1")
"""FluidSynth loads only the samples a piece plays: the same output, sample for sample, from
45 MB of memory instead of 174 MB (Debian's FluidR3_GM), and a little less time."""
RENDER_TIMEOUT_S = 300.0
"""Longest we let FluidSynth run; it renders about 20-80x faster than real time."""

TAIL_SECONDS = 0.25
"""Ring-out kept after the last audible sample (the reverb tail itself is kept while audible)."""

SILENCE_DB = -60.0
"""Sound this far below the peak counts as silence when finding where the piece ends."""

FADE_SECONDS = 0.05
"""Fade-out at the cut, so stopping mid-tail cannot click."""

_BLOCK_FRAMES = 1 << 16
_ENVELOPE_WINDOW_S = 0.01


class AudioUnavailable(Exception):
    """Audio could not be made; ``str()`` says why (no FluidSynth, no SoundFont, a failed render).

    Not a :class:`~composer.errors.ComposerError`: the user did nothing wrong, and the caller
    still delivers the MIDI file and the picture with this reason as a warning.
    """


@dataclass(frozen=True)
class AudioInfo:
    """What :func:`render_audio` wrote, for the reply text and for logs."""

    path: Path
    seconds: float
    """Length of the audio after trimming."""
    peak_db: float
    """Peak of the normalised samples handed to the encoder, in dBFS. The decoded file differs a
    little: Opus lands within ~0.3 dB, MP3 0.4-0.7 dB lower (LAME's low-pass trims transients)."""
    bytes: int
    format: str
    """``"ogg"`` (Opus) or ``"mp3"``."""
    render_seconds: float = 0.0
    """Time FluidSynth took to synthesise the samples."""
    encode_seconds: float = 0.0
    """Time taken to scan, normalise and encode them."""


def find_soundfont(configured: str | Path | None = None) -> Path | None:
    """The SoundFont to render with: ``configured`` if that file exists, else the first candidate.

    A configured path that does not exist falls back to the system ones (with a logged warning)
    rather than disabling audio, since a stale setting should not silence the bot.
    """
    if configured:
        path = Path(configured).expanduser()
        if path.is_file():
            return path
        log.warning("configured SoundFont %s does not exist; looking for a system one", path)
    for candidate in SOUNDFONT_CANDIDATES:
        path = Path(candidate)
        if path.is_file():
            return path
    return None


def render_audio(
    midi_path: Path,
    out_path: Path,
    soundfont: Path | None,
    sample_rate: int = 24000,
    fmt: str = "ogg",
    target_peak_db: float = -1.0,
    bitrate_kbps: int | None = None,
    *,
    max_bytes: int = MAX_AUDIO_BYTES,
    timeout_s: float = RENDER_TIMEOUT_S,
    streaming: bool = True,
) -> AudioInfo:
    """Render ``midi_path`` with FluidSynth and write normalised OGG/Opus or MP3 to ``out_path``.

    ``bitrate_kbps`` defaults to :data:`DEFAULT_BITRATE_KBPS` for the format and is lowered when
    the piece is so long that the file would exceed ``max_bytes``. With ``streaming``, Ogg Opus is
    encoded while FluidSynth renders and normalised by its header's output gain
    (:mod:`composer.render.audio_stream`); a streamed file over the budget is made again the two-pass
    way, as MP3 always is. Raises :class:`AudioUnavailable`
    with a reason when the tools are missing or the render fails (nothing is left at
    ``out_path`` then), and ``ValueError`` for arguments no caller should pass.

    FluidSynth is run directly rather than through ``midi2audio``: midi2audio calls
    ``subprocess.call`` with the bot's own stdout (its banner would land in the bot's log, and
    silencing it means redirecting file descriptor 1 for the whole process, unsafe with other
    threads running), ignores FluidSynth's exit status, has no timeout, picks the output type from
    the extension (``.ogg`` silently gives a WAV) and cannot ask for float samples.
    """
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ValueError(f"audio format must be one of {FORMATS}, got {fmt!r}")
    if fmt == "ogg" and sample_rate not in OPUS_SAMPLE_RATES:
        raise ValueError(f"Opus needs a sample rate of {OPUS_SAMPLE_RATES}, got {sample_rate}")
    if not 8000 <= sample_rate <= 96000:
        raise ValueError(f"sample rate must be 8000-96000 Hz, got {sample_rate}")
    if target_peak_db > 0:
        raise ValueError(f"target peak must be at most 0 dBFS, got {target_peak_db}")
    if bitrate_kbps is not None and bitrate_kbps < MIN_BITRATE_KBPS[fmt]:
        raise ValueError(f"bitrate must be at least {MIN_BITRATE_KBPS[fmt]} kbit/s, got {bitrate_kbps}")
    midi_path, out_path = Path(midi_path), Path(out_path)
    if not midi_path.is_file():
        raise FileNotFoundError(f"no MIDI file at {midi_path}")

    binary = shutil.which("fluidsynth")
    if binary is None:
        raise AudioUnavailable("FluidSynth is not installed (apt-get install fluidsynth)")
    if soundfont is None or not Path(soundfont).is_file():
        where = f" (nothing at {soundfont})" if soundfont is not None else ""
        raise AudioUnavailable(
            f"no SoundFont found{where}: set COMPOSER_SOUNDFONT to an .sf2 file "
            "or install one (apt-get install fluid-soundfont-gm)"
        )
    _check_soundfont(Path(soundfont))
    _check_encoder(fmt)
    parsed = parse_quietly(midi_path)
    chorus = chorus_needed(Path(soundfont), parsed)
    effects = [] if chorus else [*CHORUS_OFF]
    if streaming and fmt == "ogg":
        streamed = _render_streaming(
            binary,
            Path(soundfont),
            midi_path,
            out_path,
            fmt,
            sample_rate,
            target_peak_db,
            bitrate_kbps,
            max_bytes,
            timeout_s,
            parsed,
            chorus,
        )
        if streamed is not None:
            return streamed

    with tempfile.TemporaryDirectory(prefix="cadenza-audio-") as tmp:
        wav = Path(tmp) / "render.wav"
        started = time.perf_counter()
        chatter = _synthesize(binary, Path(soundfont), midi_path, wav, sample_rate, timeout_s, effects)
        rendered = time.perf_counter()
        peak, end_frame, rate = _scan(wav, chatter)
        gain = 10 ** (target_peak_db / 20) / peak
        seconds = end_frame / rate
        kbps = _choose_bitrate(fmt, bitrate_kbps, seconds, max_bytes)
        part = _encode(wav, out_path, fmt, gain, end_frame, kbps)
        try:
            size = part.stat().st_size
            if size > max_bytes:  # VBR overshot the budget: one more try, scaled down with margin
                part.unlink()
                kbps = max(MIN_BITRATE_KBPS[fmt], int(kbps * max_bytes / size * 0.9))
                part = _encode(wav, out_path, fmt, gain, end_frame, kbps)
                size = part.stat().st_size
                if size > max_bytes:
                    raise AudioUnavailable(
                        f"the piece is too long for audio: {seconds / 60:.0f} minutes do not fit "
                        f"in {max_bytes / 1e6:.0f} MB"
                    )
            part.chmod(0o644)  # mkstemp makes it private; the result is an ordinary file
            os.replace(part, out_path)
        finally:
            part.unlink(missing_ok=True)
        encoded = time.perf_counter()
    log.info(
        "rendered %s: %.1f s of audio, %s at %d kbit/s, %d bytes (synth %.2f s, encode %.2f s)",
        out_path.name,
        seconds,
        fmt,
        kbps,
        size,
        rendered - started,
        encoded - rendered,
    )
    return AudioInfo(out_path, seconds, target_peak_db, size, fmt, rendered - started, encoded - rendered)


def _render_streaming(
    binary: str,
    soundfont: Path,
    midi: Path,
    out_path: Path,
    fmt: str,
    sample_rate: int,
    target_peak_db: float,
    bitrate_kbps: int | None,
    max_bytes: int,
    timeout_s: float,
    parsed: MidiFile | None,
    chorus: bool,
) -> AudioInfo | None:
    """Render and encode at once; None when the file came out over ``max_bytes`` (the caller then
    makes it the two-pass way, which knows the length before it picks the bitrate)."""
    from composer.render import synth
    from composer.render.audio_stream import CommandSource, LibrarySource, StreamFailed, render_streaming

    kbps = _choose_bitrate(fmt, bitrate_kbps, _midi_seconds(parsed) + 2.0, max_bytes)
    handle, name = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".part")
    os.close(handle)
    part = Path(name)
    try:
        try:
            source: FrameSource
            if synth.available():
                source = LibrarySource(soundfont, midi, parsed, sample_rate, chorus, timeout_s)
            else:
                command = [
                    *(binary, "-ni", *ON_DEMAND, "-g", "0.5", "-r", str(sample_rate), "-O", "float"),
                    *("-T", "raw", "-E", "little", *([] if chorus else CHORUS_OFF)),
                    *("-F", "-", str(soundfont), str(midi)),
                ]
                source = CommandSource(command, timeout_s)
            done = render_streaming(
                source, part, sample_rate, kbps, target_peak_db, SILENCE_DB, TAIL_SECONDS, FADE_SECONDS
            )
        except StreamFailed as why:
            raise AudioUnavailable(str(why)[:300]) from None
        except sf.SoundFileError as error:
            raise AudioUnavailable(f"encoding {fmt.upper()} failed: {error}") from error
        size = part.stat().st_size
        if size > max_bytes:
            return None
        part.chmod(0o644)
        os.replace(part, out_path)
    finally:
        part.unlink(missing_ok=True)
    seconds = done.frames / sample_rate
    log.info(
        "rendered %s streaming: %.1f s of audio, %s at %d kbit/s, %d bytes (synth %.2f s, then %.2f s)",
        out_path.name,
        seconds,
        fmt,
        kbps,
        size,
        done.render_seconds,
        done.encode_seconds,
    )
    return AudioInfo(out_path, seconds, target_peak_db, size, fmt, done.render_seconds, done.encode_seconds)


def _midi_seconds(parsed: MidiFile | None) -> float:
    """How long the piece plays, through its tempo map (0 when it could not be read)."""
    if parsed is None:
        return 0.0
    return float(Timeline.of(parsed).seconds([parsed.end])[0])


def _check_soundfont(soundfont: Path) -> None:
    """Refuse a file that is not a SoundFont (or DLS) before FluidSynth sees it.

    FluidSynth only prints a complaint about such a file and then quietly renders with its own
    default SoundFont (or silence when there is none), so a broken setting would go unnoticed.
    """
    try:
        with soundfont.open("rb") as f:
            header = f.read(12)
    except OSError as error:
        raise AudioUnavailable(f"the SoundFont {soundfont} cannot be read: {error.strerror}") from error
    if header[:4] != b"RIFF" or header[8:12] not in (b"sfbk", b"DLS "):
        raise AudioUnavailable(
            f"{soundfont} is not a SoundFont (.sf2) file: set COMPOSER_SOUNDFONT to a General MIDI "
            "SoundFont or install one (apt-get install fluid-soundfont-gm)"
        )


def _check_encoder(fmt: str) -> None:
    """Fail early, with the reason, when this libsndfile cannot write the format (before 1.1)."""
    supported = "OPUS" in sf.available_subtypes("OGG") if fmt == "ogg" else "MP3" in sf.available_formats()
    if not supported:
        raise AudioUnavailable(
            f"this libsndfile ({sf.__libsndfile_version__}) cannot write {fmt.upper()}; "
            "version 1.1 or newer is needed"
        )


def _synthesize(
    binary: str,
    soundfont: Path,
    midi: Path,
    wav: Path,
    sample_rate: int,
    timeout_s: float,
    effects: list[str],
) -> str:
    """Run FluidSynth into ``wav`` (32-bit float) and return what it printed, for error messages.

    FluidSynth exits 0 even for an unreadable SoundFont (it renders silence) or an unwritable
    output path, so the caller checks the WAV itself; the exit status is still checked here.
    """
    command = [
        binary,
        "-ni",  # no MIDI input driver, no interactive shell
        *ON_DEMAND,
        "-g",
        "0.5",  # float output cannot clip, so any gain works; we normalise afterwards
        "-r",
        str(sample_rate),
        "-O",
        "float",
        "-T",
        "wav",
        *effects,
        "-F",
        str(wav),
        str(soundfont),
        str(midi),
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, errors="replace", timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise AudioUnavailable(f"FluidSynth took longer than {timeout_s:.0f} s and was stopped") from error
    except OSError as error:
        raise AudioUnavailable(f"FluidSynth could not be started: {error}") from error
    chatter = f"{done.stdout}\n{done.stderr}"
    if done.returncode != 0:
        raise AudioUnavailable(f"FluidSynth failed (exit status {done.returncode}): {_complaint(chatter)}")
    return chatter


def _complaint(chatter: str) -> str:
    """The most telling line FluidSynth printed: its first error, else its last line."""
    lines = [line.strip() for line in chatter.splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower() or "not a soundfont or midi file" in line.lower():
            return line[:300]
    return lines[-1][:300] if lines else "no output"


def _scan(wav: Path, chatter: str) -> tuple[float, int, int]:
    """Read the render once: its peak, the frame where the sound ends (plus ring-out) and the rate.

    The end is the last 10 ms window louder than :data:`SILENCE_DB` below the peak, plus
    :data:`TAIL_SECONDS`, never past the end of the file.
    """
    try:
        info = sf.info(str(wav))
    except (sf.SoundFileError, OSError) as error:
        raise AudioUnavailable(f"FluidSynth wrote no readable audio: {_complaint(chatter)}") from error
    if info.frames == 0:
        raise AudioUnavailable(f"FluidSynth wrote an empty file: {_complaint(chatter)}")
    rate = info.samplerate
    window = max(1, int(rate * _ENVELOPE_WINDOW_S))
    block_frames = _BLOCK_FRAMES - _BLOCK_FRAMES % window  # whole windows per block
    envelope: list[np.ndarray] = []
    for block in sf.blocks(str(wav), blocksize=block_frames, dtype="float32", always_2d=True):
        loudest = np.abs(block).max(axis=1)
        pad = -len(loudest) % window
        if pad:
            loudest = np.concatenate([loudest, np.zeros(pad, dtype=loudest.dtype)])
        envelope.append(loudest.reshape(-1, window).max(axis=1))
    env = np.concatenate(envelope)
    peak = float(env.max()) if len(env) else 0.0
    if not np.isfinite(peak) or peak <= 1e-7:
        hint = _complaint(chatter)
        reason = "FluidSynth rendered only silence"
        if "error" in hint.lower() or "not a soundfont" in hint.lower():
            reason += f" ({hint})"
        else:
            reason += " (no audible notes in the MIDI, or the SoundFont lacks their instruments)"
        raise AudioUnavailable(reason)
    audible = np.nonzero(env > peak * 10 ** (SILENCE_DB / 20))[0]
    end_frame = min(info.frames, (int(audible[-1]) + 1) * window + int(TAIL_SECONDS * rate))
    return peak, end_frame, rate


def _choose_bitrate(fmt: str, requested: int | None, seconds: float, max_bytes: int) -> int:
    """The requested (or default) bitrate, lowered so ``seconds`` of audio fit in ``max_bytes``."""
    kbps = requested if requested is not None else DEFAULT_BITRATE_KBPS[fmt]
    budget = int(max_bytes * 8 * 0.92 / max(seconds, 1.0) / 1000)  # 8% for container and VBR swings
    return max(MIN_BITRATE_KBPS[fmt], min(kbps, budget))


def encoder_settings(fmt: str, kbps: int, channels: int) -> dict[str, object]:
    """soundfile.SoundFile arguments that make libsndfile aim for ``kbps``.

    libsndfile takes a "compression level" 0-1, not a bitrate. Measured with libsndfile 1.2.2:
    Opus maps it linearly from 256 down to 6 kbit/s per channel; MP3 in average-bitrate mode from
    about 320 down to 32 kbit/s (landing a few percent under), and refuses exactly 1.0. Opus
    refuses bitrate modes, so none is set for it.
    """
    if fmt == "ogg":
        level = (256 * channels - kbps) / (250 * channels)
        return {"format": "OGG", "subtype": "OPUS", "compression_level": min(1.0, max(0.0, level))}
    level = (320 - kbps) / (320 - 32)
    return {
        "format": "MP3",
        "subtype": "MPEG_LAYER_III",
        "compression_level": min(0.99, max(0.0, level)),
        "bitrate_mode": "AVERAGE",
    }


def _encode(wav: Path, out_path: Path, fmt: str, gain: float, end_frame: int, kbps: int) -> Path:
    """Scale, trim, fade and encode ``wav`` into a temporary file beside ``out_path``; return it.

    The caller renames it into place once its size is known to be acceptable.
    """
    handle, tmp_name = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".part")
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        with sf.SoundFile(str(wav)) as source:
            rate, channels = source.samplerate, source.channels
            fade = min(end_frame, int(FADE_SECONDS * rate))
            settings = encoder_settings(fmt, kbps, channels)
            with sf.SoundFile(str(tmp), "w", rate, channels, **settings) as sink:
                position = 0
                while position < end_frame:
                    block = source.read(
                        min(_BLOCK_FRAMES, end_frame - position), dtype="float32", always_2d=True
                    )
                    if len(block) == 0:
                        break
                    block *= np.float32(gain)
                    fade_start = end_frame - fade
                    if position + len(block) > fade_start:
                        index = np.arange(position, position + len(block))
                        ramp = np.clip((end_frame - index) / max(fade, 1), 0.0, 1.0).astype(np.float32)
                        block *= ramp[:, None]
                    np.clip(block, -1.0, 1.0, out=block)
                    sink.write(block)
                    position += len(block)
    except sf.SoundFileError as error:
        tmp.unlink(missing_ok=True)
        raise AudioUnavailable(f"encoding {fmt.upper()} failed: {error}") from error
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp
