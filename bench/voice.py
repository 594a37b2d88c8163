"""Live music for voice channels: CPU per stream, memory over an hour, streams sustained, latency, gaps.

Each stream is what one voice session runs: :class:`composer.render.live.LiveStream` with radio
pieces from the real composer (the bundled model, ``BOT_RADIO_LENGTH`` notes and chords, a new
seed each) rendered by FluidSynth with the General MIDI SoundFont, read by a thread every 20 ms
as discord.py's player reads it, and each frame encoded with discord.py's own Opus encoder and
encrypted with PyNaCl (XChaCha20-Poly1305, as discord.py does before sending; only the network
send is left out).

- ``streams``: N streams at once in real time for ``--seconds``; an underrun is a frame not
  ready when due. CPU is this process and its FluidSynth children, as a share of one core.
- ``first``: time from asking to the first frame ready (composing the first piece, starting
  FluidSynth, the first half second rendered) and from there to the first frame read.
- ``hour``: one stream read at 20 times real time for an hour of music: resident memory of the
  process and its FluidSynth children each simulated ten minutes, and the gaps between pieces.

    python bench/voice.py [--quick] [--model M] [--streams 1,4,8] [--seconds 60]
"""

from __future__ import annotations

import os
import resource
import secrets
import threading
import time
from pathlib import Path

from _common import median, parser, print_footer, print_header, print_table


def children_rss() -> int:
    """Resident bytes of this process's child processes (FluidSynth)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == os.getpid():
                total += int(Path(f"/proc/{entry}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            continue
    return total


def own_rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class Radio:
    """``next_piece`` for a stream: radio pieces from the composer, files in a folder of their own."""

    def __init__(self, composer, folder: Path, length: int) -> None:
        self.composer = composer
        self.folder = folder
        self.length = length
        self.compose_seconds: list[float] = []

    def __call__(self):
        from composer.render.live import Cue
        from composer.service import ComposeRequest

        started = time.perf_counter()
        out = self.folder / secrets.token_hex(4)
        request = ComposeRequest(length=self.length, audio=False, picture=False)
        piece = self.composer.compose_sync(request, out)
        self.compose_seconds.append(time.perf_counter() - started)
        return Cue(piece.midi, piece.seconds)


class Listener(threading.Thread):
    """Reads a stream every 20 ms / ``speed`` like discord.py's player, encoding and encrypting frames."""

    def __init__(self, stream, seconds: float, speed: float = 1.0, encode: bool = True) -> None:
        super().__init__(daemon=True)
        self.stream, self.seconds, self.speed, self.encode = stream, seconds, speed, encode
        self.late: list[float] = []
        self.first_read_at: float | None = None
        self.on_frame = None

    def run(self) -> None:
        import discord.opus
        import nacl.secret
        import nacl.utils

        encoder = discord.opus.Encoder() if self.encode else None
        box = nacl.secret.Aead(nacl.utils.random(32)) if self.encode else None
        delay = 0.02 / self.speed
        started = time.perf_counter()
        for count in range(1, round(self.seconds / 0.02) + 1):
            frame = self.stream.read()
            if self.first_read_at is None:
                self.first_read_at = time.perf_counter()
            if encoder is not None:
                packet = encoder.encode(frame, encoder.SAMPLES_PER_FRAME)
                box.encrypt(packet, b"header12", nacl.utils.random(24))
            if self.on_frame is not None:
                self.on_frame(count)
            due = started + delay * count
            now = time.perf_counter()
            self.late.append(now - due)
            time.sleep(max(0.0, due - now))


def run_streams(composer, soundfont: Path, folder: Path, count: int, seconds: float, length: int) -> dict:
    from composer.render.live import LiveStream

    radios = [Radio(composer, folder / f"s{i}", length) for i in range(count)]
    streams = [LiveStream(radio, soundfont) for radio in radios]
    cpu_before, wall_before = cpu_seconds(), time.perf_counter()
    for stream in streams:
        stream.start()
    for stream in streams:
        stream.wait_ready(60)
    listeners = [Listener(stream, seconds) for stream in streams]
    for listener in listeners:
        listener.start()
    peak_rss = 0
    while any(listener.is_alive() for listener in listeners):
        peak_rss = max(peak_rss, own_rss() + children_rss())
        time.sleep(0.5)
    buffered = min(stream.buffered_seconds() for stream in streams)
    for stream in streams:
        stream.close()
    cpu = cpu_seconds() - cpu_before
    wall = time.perf_counter() - wall_before
    return {
        "streams": count,
        "underruns": sum(s.stats.underruns for s in streams),
        "frames": sum(s.stats.frames for s in streams),
        "cpu_per_stream": cpu / wall / count,
        "peak_rss_mb": peak_rss / 2**20,
        "late_reads": sum(1 for listener in listeners for x in listener.late if x > 0.02),
        "compose_s": median([x for r in radios for x in r.compose_seconds]),
        "buffered_min_s": buffered,
    }


def first_frame(
    composer, soundfont: Path, folder: Path, length: int, rounds: int
) -> list[tuple[float, float]]:
    """(seconds to the first frame ready, seconds to the first frame read) for fresh streams."""
    from composer.render.live import LiveStream

    found = []
    for round_ in range(rounds):
        started = time.perf_counter()
        stream = LiveStream(Radio(composer, folder / f"first{round_}", length), soundfont).start()
        stream.wait_ready(60)
        ready = time.perf_counter()
        listener = Listener(stream, 0.2)
        listener.start()
        listener.join()
        stream.close()
        found.append((stream.stats.first_frame_at - started, ready - started))
    return found


def hour(composer, soundfont: Path, folder: Path, length: int, speed: float) -> tuple[list, list[float], int]:
    """Memory each simulated ten minutes, the gaps between pieces and the underruns: an hour at ``speed``."""
    from composer.render.live import LiveStream

    stream = LiveStream(
        Radio(composer, folder / "hour", length), soundfont, buffer_seconds=HOUR_BUFFER
    ).start()
    stream.wait_ready(60)
    marks: list[tuple[int, float, float]] = []

    def mark(count: int) -> None:
        if count % 30_000 == 0:  # every ten minutes of music
            marks.append((count // 3000, own_rss() / 2**20, children_rss() / 2**20))

    listener = Listener(stream, 3600, speed=speed, encode=False)
    listener.on_frame = mark
    listener.start()
    listener.join()
    stream.close()
    return marks, stream.stats.gaps, stream.stats.underruns


HOUR_BUFFER = 30.0
"""Seconds of music buffered in the hour run (at most 5.8 MB, so the memory figures are the rest)."""


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--streams", default="1,4,8,12", help="numbers of simultaneous streams to try")
    p.add_argument("--seconds", type=float, default=60.0, help="seconds each count of streams plays")
    p.add_argument("--length", type=int, default=300, help="notes and chords of each radio piece")
    p.add_argument("--speed", type=float, default=20.0, help="how much faster than real time the hour runs")
    args = p.parse_args()
    if args.quick:
        args.streams, args.seconds, args.speed = "1,2", 10.0, 60.0

    import tempfile

    from composer.render.audio import find_soundfont
    from composer.service import Composer
    from composer.settings import ComposerSettings

    print_header("Live music for voice channels", args.model)
    soundfont = find_soundfont()
    composer = Composer(ComposerSettings(model=args.model))
    composer.load()
    with tempfile.TemporaryDirectory(prefix="cadenza-voice-bench-") as tmp:
        folder = Path(tmp)
        firsts = first_frame(composer, soundfont, folder, args.length, 3 if args.quick else 5)
        print(f"\nFirst frame (pieces of {args.length} notes and chords, {len(firsts)} fresh streams):")
        print_table(
            ["", "median", "slowest"],
            [
                [
                    "first frame rendered",
                    f"{median([a for a, _ in firsts]):.2f} s",
                    f"{max(a for a, _ in firsts):.2f} s",
                ],
                [
                    "playback can start (0.5 s buffered)",
                    f"{median([b for _, b in firsts]):.2f} s",
                    f"{max(b for _, b in firsts):.2f} s",
                ],
            ],
        )

        rows = []
        for count in [int(n) for n in args.streams.split(",")]:
            result = run_streams(composer, soundfont, folder, count, args.seconds, args.length)
            rows.append(
                [
                    result["streams"],
                    f"{result['cpu_per_stream'] * 100:.1f} %",
                    result["underruns"],
                    result["late_reads"],
                    f"{result['buffered_min_s']:.1f} s",
                    f"{result['compose_s']:.2f} s",
                    f"{result['peak_rss_mb']:.0f} MB",
                ]
            )
            print(f"  {count} streams: done", flush=True)
        print(
            f"\nStreams at once, {args.seconds:g} s in real time each (Opus-encoded and encrypted per frame):"
        )
        print_table(
            [
                "streams",
                "CPU per stream (one core)",
                "underruns",
                "reads over 20 ms late",
                "least buffered at end",
                "compose a piece (median)",
                "peak memory (process + FluidSynth)",
            ],
            rows,
        )

        marks, gaps, underruns = hour(composer, soundfont, folder, args.length, args.speed)
        print(
            f"\nAn hour of radio at {args.speed:g} times real time ({HOUR_BUFFER:g} s buffered), "
            f"{len(gaps) + 1} pieces:"
        )
        print_table(
            ["music played", "process RSS", "FluidSynth RSS"],
            [[f"{minutes} min", f"{own:.0f} MB", f"{kids:.0f} MB"] for minutes, own, kids in marks],
        )
        print(
            f"\nGaps between pieces (silence between one's last sound and the next one's first): "
            f"median {median(gaps):.2f} s, longest {max(gaps, default=0):.2f} s; underruns {underruns}."
        )
    composer.close()
    print_footer()


if __name__ == "__main__":
    main()
