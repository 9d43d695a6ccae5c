"""How fast the audio room turns samples into an MP3 and an attachment into samples, and how fast stems split.

Prints ``name=value`` lines; the last line is the headline (the slower of the two audio-room figures, in x
realtime; goal >= 100). ``stems_x_realtime`` is the engine's separation (``run_separation``, demucs'
``apply_model``) on this machine's CPU with an htdemucs of the released size and window (random weights,
the same arithmetic as the real one), in seconds of audio split per second.

    python bench/audio.py --quick      # under a minute
    python bench/audio.py --seconds 300 --repeats 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.audio import AudioLimits, TrackTags, encode, load_input

MODEL_RATE = 32000
ATTACHMENT_RATE = 44100
# Seconds of music split for stems_x_realtime: --quick takes two of htdemucs' 7.8 s windows.
STEMS_SECONDS, STEMS_QUICK_SECONDS = 30.0, 10.0


def synth(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """Stereo music-like test audio: a pulsing chord, a wandering bass line and some noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate), dtype=np.float32) / rate
    chord = sum(np.sin(np.float32(2 * np.pi * f) * t) for f in (220.0, 277.2, 329.6))
    bass = np.sin(np.float32(2 * np.pi) * (55.0 * t + 3.0 * np.sin(np.float32(0.5) * t)))
    pulse = np.float32(0.6) + np.float32(0.4) * (np.sin(np.float32(2 * np.pi * 2.0) * t) > 0)
    mono = (chord * pulse / 3 + bass / 2) * np.float32(0.2)
    noise = rng.standard_normal((2, t.size), dtype=np.float32) * np.float32(0.02)
    return (np.stack([mono, mono * np.float32(0.8)]) + noise).astype(np.float32)


async def time_encode(audio: np.ndarray, folder: Path, repeats: int) -> list[float]:
    """Seconds per full ``encode`` (levelling, tags, MP3 at the chosen bitrate, size check)."""
    tags = TrackTags(title="bench", recipe={"job_id": "bench", "seed": 1})
    times = []
    for index in range(repeats):
        start = time.perf_counter()
        await encode(audio, MODEL_RATE, folder / f"out-{index}.mp3", tags=tags)
        times.append(time.perf_counter() - start)
    return times


async def time_decode(path: Path, repeats: int) -> list[float]:
    """Seconds per ``load_input`` (sniff, ffprobe, decode + resample to 32 kHz stereo, checks)."""
    limits = AudioLimits(timeout_s=120)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        await load_input(path, MODEL_RATE, 2, limits)
        times.append(time.perf_counter() - start)
    return times


async def run(seconds: float, repeats: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="jamgen-bench-") as tmp:
        folder = Path(tmp)
        # Warm-up: imports (scipy) and first-run costs are not what is being measured.
        await encode(synth(1.0, MODEL_RATE), MODEL_RATE, folder / "warm.mp3")
        await load_input(folder / "warm.mp3", MODEL_RATE, 2, AudioLimits())
        model_audio = synth(seconds, MODEL_RATE)
        encode_times = await time_encode(model_audio, folder, repeats)
        # A typical attachment: a 44.1 kHz stereo MP3.
        attachment = folder / "attachment.mp3"
        await encode(synth(seconds, ATTACHMENT_RATE, seed=1), ATTACHMENT_RATE, attachment, normalization="peak")
        decode_times = await time_decode(attachment, repeats)
    encode_x = seconds / statistics.median(encode_times)
    decode_x = seconds / statistics.median(decode_times)
    return {"mp3_encode_x_realtime": encode_x, "decode_x_realtime": decode_x}


def time_stems(seconds: float) -> float:
    """Seconds of audio the engine's separation splits per second on the CPU (real-size htdemucs, random weights)."""
    import torch

    from bot.engine.types import GenerationRequest, Mode
    from bot.engine.worker.htdemucs import HTDEMUCS_KWARGS, build_random_separator
    from bot.engine.worker.separate import run_separation

    model = build_random_separator(torch.device("cpu"), seed=0, segment=HTDEMUCS_KWARGS["segment"])
    track = synth(seconds, ATTACHMENT_RATE, seed=2)
    request = GenerationRequest("bench", 0, "htdemucs", Mode.STEMS, "", seconds, audio=track, audio_sample_rate=44100)
    start = time.perf_counter()
    run_separation(model, [request], lambda done, total: None)
    return seconds / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="60 s of audio, 3 repeats (under a minute)")
    parser.add_argument("--seconds", type=float, default=300.0, help="audio length per run (default 300)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement; the median counts (default 5)")
    parser.add_argument("--no-stems", action="store_true", help="skip stems_x_realtime (it imports torch and demucs)")
    args = parser.parse_args(argv)
    seconds, repeats = (60.0, 3) if args.quick else (args.seconds, args.repeats)
    stems_seconds = STEMS_QUICK_SECONDS if args.quick else STEMS_SECONDS
    print(f"# audio bench: {seconds:g} s stereo, {repeats} repeats, median; encode = level -14 LUFS + MP3 192 kbps,")
    print("# decode = 44.1 kHz stereo MP3 -> probe + 32 kHz stereo float32; values are seconds of audio per second")
    results = asyncio.run(run(seconds, repeats))
    for name, value in results.items():
        print(f"{name}={value:.1f}")
    if not args.no_stems:
        print(f"# stems = {stems_seconds:g} s of 44.1 kHz stereo through run_separation, htdemucs' size and window")
        print(f"stems_x_realtime={time_stems(stems_seconds):.2f}")
    print(f"headline_x_realtime={min(results.values()):.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
