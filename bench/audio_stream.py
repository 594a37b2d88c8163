"""Audio rendered while it encodes (streaming) against render-then-encode (two-pass), and an A/B.

For each piece: FluidSynth alone rendering the MIDI to a WAV with today's settings (the floor),
the two-pass render (render, measure the peak, encode) and the streaming one (encode as FluidSynth
renders, normalised by the Ogg Opus header's output gain). Then the A/B of the two files as a
player decodes them: peak, the loudness (RMS) difference and the largest difference in the shape
of their spectra in third-octave bands. Pieces: the bundled model's and Freedoom's game music
(many instruments, loud all through) when installed.

    python bench/audio_stream.py [--quick] [--model M]
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import median, parser, print_footer, print_header, print_table


def band_levels(samples: np.ndarray, rate: int) -> np.ndarray:
    """Energy in third-octave bands from 50 Hz to 10 kHz, in dB."""
    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    spectrum = np.abs(np.fft.rfft(mono)) ** 2
    freqs = np.fft.rfftfreq(len(mono), 1 / rate)
    centres = 1000 * 2.0 ** (np.arange(-13, 11) / 3)
    levels = []
    for centre in centres:
        band = (freqs >= centre / 2 ** (1 / 6)) & (freqs < centre * 2 ** (1 / 6))
        levels.append(10 * np.log10(spectrum[band].sum() + 1e-20))
    return np.array(levels)


def main() -> None:
    args = parser(__doc__).parse_args()
    from composer.render.audio import find_soundfont, render_audio
    from composer.render.system_libsndfile import soundfile as sf
    from composer.service import Composer, ComposeRequest
    from composer.settings import ComposerSettings
    from training.wad import FREEDOOM_WADS, music_lumps

    soundfont = find_soundfont(None)
    print_header("Audio: streaming against two-pass, and FluidSynth alone", args.model)
    rows, ratios, stream_ratios = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pieces: list[tuple[str, Path]] = []
        composer = Composer(ComposerSettings(model=args.model), workers=1)
        for seed in range(2 if args.quick else 4):
            request = ComposeRequest(length=500, seed=seed, audio=False, picture=False)
            pieces.append((f"model seed {seed}", composer.compose_sync(request, folder / "made").midi))
        composer.close()
        wads = [w for w in FREEDOOM_WADS if w.is_file()]
        for wad in wads:
            for name, data in list(music_lumps(wad).items())[: 1 if args.quick else 3]:
                path = folder / f"{wad.stem}-{name}.mid"
                path.write_bytes(data)
                pieces.append((f"freedoom {name}", path))
        for label, midi in pieces:
            start = time.perf_counter()
            subprocess.run(
                [
                    "fluidsynth",
                    "-ni",
                    "-F",
                    str(folder / "alone.wav"),
                    "-r",
                    "24000",
                    str(soundfont),
                    str(midi),
                ],
                capture_output=True,
                check=True,
            )
            alone = time.perf_counter() - start
            start = time.perf_counter()
            old = render_audio(midi, folder / "two-pass.ogg", soundfont, streaming=False)
            two_pass = time.perf_counter() - start
            start = time.perf_counter()
            new = render_audio(midi, folder / "streaming.ogg", soundfont)
            streaming = time.perf_counter() - start
            a, rate = sf.read(str(old.path), dtype="float32")
            b, _ = sf.read(str(new.path), dtype="float32")
            n = min(len(a), len(b))
            rms = 20 * np.log10(np.sqrt(np.mean(b[:n] ** 2)) / np.sqrt(np.mean(a[:n] ** 2)))
            bands = np.abs(band_levels(b[:n], rate) - band_levels(a[:n], rate))
            shape = bands - np.mean(band_levels(b[:n], rate) - band_levels(a[:n], rate))
            rows.append(
                [
                    label,
                    f"{old.seconds:.0f}",
                    f"{alone:.2f}",
                    f"{two_pass:.2f}",
                    f"{streaming:.2f}",
                    f"{streaming / alone:.2f}",
                    f"{20 * np.log10(np.abs(a).max()):.2f}",
                    f"{20 * np.log10(np.abs(b).max()):.2f}",
                    f"{rms:+.2f}",
                    f"{np.max(np.abs(shape)):.2f}",
                    f"{new.bytes / 1024:.0f} / {old.bytes / 1024:.0f}",
                ]
            )
            ratios.append(two_pass / alone)
            stream_ratios.append(streaming / alone)
    print_table(
        [
            "piece",
            "audio s",
            "FluidSynth alone s",
            "two-pass s",
            "streaming s",
            "streaming / alone",
            "peak dBFS two-pass",
            "peak dBFS streaming",
            "loudness streaming − two-pass (dB)",
            "largest band-shape difference (dB)",
            "KB streaming / two-pass",
        ],
        rows,
    )
    print(
        f"\nmedian against FluidSynth alone: two-pass {median(ratios):.2f}x, "
        f"streaming {median(stream_ratios):.2f}x"
    )
    print_footer()


if __name__ == "__main__":
    main()
