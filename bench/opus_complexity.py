"""libopus' encoder complexity: CPU time, file size and coding error, per setting, same pieces.

Each piece is rendered once (FluidSynth's library, as the service renders it) and encoded at
96 kbit/s at each complexity. The coding error is the decoded file minus what went in: its level
against the music's in third-octave bands (a band's signal-to-error ratio; reported as the
largest loss against complexity 10 over the bands) and in 20 ms segments (the 5th percentile: the
worst moments, where pre-echo around drums and attacks would show). Pieces: the bundled model's
and Freedoom's game music when installed.

    python bench/opus_complexity.py [--quick] [--model M]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from _common import median, parser, print_footer, print_header, print_table

RATE = 24000
SETTINGS = (10, 5, 3, 0)


def band_snr(signal: np.ndarray, error: np.ndarray) -> np.ndarray:
    """Signal-to-error ratio in third-octave bands from 63 Hz to 10 kHz, in dB (left channel)."""
    spectrum = np.abs(np.fft.rfft(signal[:, 0])) ** 2
    noise = np.abs(np.fft.rfft(error[:, 0])) ** 2
    freqs = np.fft.rfftfreq(len(signal), 1 / RATE)
    ratios = []
    for centre in 1000 * 2.0 ** (np.arange(-12, 11) / 3):
        band = (freqs >= centre / 2 ** (1 / 6)) & (freqs < centre * 2 ** (1 / 6))
        ratios.append(10 * np.log10((spectrum[band].sum() + 1e-20) / (noise[band].sum() + 1e-20)))
    return np.array(ratios)


def worst_segments(signal: np.ndarray, error: np.ndarray) -> float:
    """5th percentile of the signal-to-error ratio over 20 ms segments with sound, in dB."""
    n = RATE // 50
    k = len(signal) // n
    s = (signal[: k * n, 0].reshape(k, n) ** 2).sum(axis=1)
    e = (error[: k * n, 0].reshape(k, n) ** 2).sum(axis=1)
    sounding = s > 1e-6 * s.max()
    return float(np.percentile(10 * np.log10(s[sounding] / (e[sounding] + 1e-20)), 5))


def main() -> None:
    args = parser(__doc__).parse_args()
    from composer.midi.smf import parse_smf
    from composer.render import synth
    from composer.render.audio import find_soundfont
    from composer.render.audio_stream import LEVEL
    from composer.render.opus import OggOpusWriter
    from composer.render.system_libsndfile import soundfile as sf
    from composer.service import Composer, ComposeRequest
    from composer.settings import ComposerSettings
    from training.wad import FREEDOOM_WADS, music_lumps

    soundfont = find_soundfont(None)
    print_header("Opus encoder complexity: CPU, size and coding error", args.model)
    cpu: dict[int, list[float]] = {c: [] for c in SETTINGS}
    size: dict[int, list[float]] = {c: [] for c in SETTINGS}
    band_loss: dict[int, list[float]] = {c: [] for c in SETTINGS}
    worst: dict[int, list[float]] = {c: [] for c in SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pieces: list[bytes] = []
        composer = Composer(ComposerSettings(model=args.model), workers=1)
        for seed in range(1 if args.quick else 3):
            request = ComposeRequest(length=500, seed=seed, audio=False, picture=False)
            pieces.append(composer.compose_sync(request, folder / "made").midi.read_bytes())
        composer.close()
        for wad in [w for w in FREEDOOM_WADS if w.is_file()][:1]:
            pieces += list(music_lumps(wad).values())[: 1 if args.quick else 3]
        for data in pieces:
            samples = np.concatenate(list(synth.render(soundfont, data, parse_smf(data), RATE, 0.5)))
            samples = np.clip(samples * np.float32(LEVEL), -1.0, 1.0)
            reference = None
            for complexity in SETTINGS:
                target = folder / f"c{complexity}.ogg"
                started = time.process_time()
                with OggOpusWriter(target, RATE, 2, 96, complexity=complexity) as writer:
                    for i in range(0, len(samples), 4800):
                        writer.write(samples[i : i + 4800])
                cpu[complexity].append(time.process_time() - started)
                size[complexity].append(target.stat().st_size / 1e6)
                decoded, rate = sf.read(str(target), dtype="float32")
                assert rate == RATE, rate
                n = min(len(decoded), len(samples))
                error = decoded[:n] - samples[:n]
                bands = band_snr(samples[:n], error)
                reference = bands if reference is None else reference
                band_loss[complexity].append(float((reference - bands).max()))
                worst[complexity].append(worst_segments(samples[:n], error))
    rows = [
        [
            str(c),
            f"{median(cpu[c]):.3f}",
            f"{median(cpu[c]) / median(cpu[10]):.2f}",
            f"{median(size[c]):.3f}",
            f"{max(band_loss[c]):.2f}",
            f"{min(worst[c]):.2f} / {median(worst[c]):.2f}",
        ]
        for c in SETTINGS
    ]
    print(f"\n{len(pieces)} pieces, 96 kbit/s, {RATE} Hz stereo")
    print_table(
        [
            "complexity",
            "encoder CPU s (median)",
            "CPU / complexity 10",
            "MB (median)",
            "largest band loss against complexity 10 (dB, any piece)",
            "worst 20 ms segments, 5th percentile SNR dB (lowest / median piece)",
        ],
        rows,
    )
    print_footer()


if __name__ == "__main__":
    main()
