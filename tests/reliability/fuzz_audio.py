"""Fuzz target for the audio room's probe-and-decode wrapper (``save_attachment`` then ``decode``).

The property, for any bytes a member could attach:

- the call either returns float32 audio of a sane shape, or raises an ``AudioInputError``
  (a ``UserInputError``: the member is told what is wrong) — never any other exception;
- it never runs longer than the tool runs it makes could take under the limits' timeout;
- it never writes outside the job folder (nothing in the working directory, nothing beside the
  job folder), and a refused file leaves nothing behind in the job folder either.

Inputs are random bytes and mutations (byte flips, interesting integers written into headers,
truncations, insertions, deletions, header splices) of small real WAV, MP3, FLAC, OGG and
other files made with ffmpeg's lavfi sources when the session starts (nothing binary is
committed). ``tests/reliability/test_fuzz_audio.py`` runs it; ``JAMGEN_FUZZ_SECONDS=60`` runs it
for a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from bot.audio import AudioInputError, AudioLimits, decode, save_attachment

# A short timeout keeps a stuck example from stalling the run; every refusal still has to come in time.
FUZZ_LIMITS = AudioLimits(timeout_s=10.0)
DECODE_RATE = 32000
DECODE_CHANNELS = 1
JOB_ID = "fuzzjob"
# save_attachment: ffprobe, perhaps a duration-measuring ffmpeg, the verifying decode;
# decode: ffprobe again, perhaps the measuring ffmpeg again, the decode. Each is bounded by the timeout.
MAX_TOOL_RUNS = 6
SLACK_S = 5.0

# Seeds: (lavfi source, ffmpeg output options, file name). Tiny files so mutations hit headers often.
_SINE = ["-f", "lavfi", "-i", "sine=frequency=440:duration=0.4:sample_rate=8000"]
_NOISE = ["-f", "lavfi", "-i", "anoisesrc=duration=0.3:sample_rate=16000:amplitude=0.3"]
SEED_RECIPES: dict[str, tuple[list[str], list[str]]] = {
    "sine.wav": (_SINE, ["-c:a", "pcm_s16le", "-f", "wav"]),
    "noise-float.wav": (_NOISE, ["-c:a", "pcm_f32le", "-f", "wav"]),
    "sine.mp3": (_SINE, ["-c:a", "libmp3lame", "-b:a", "32k", "-f", "mp3"]),
    "sine.flac": (_SINE, ["-c:a", "flac", "-f", "flac"]),
    "sine.ogg": (_SINE, ["-c:a", "libvorbis", "-f", "ogg"]),
    "noise.opus": (_NOISE, ["-c:a", "libopus", "-b:a", "16k", "-f", "ogg"]),
    "sine.m4a": (_SINE, ["-c:a", "aac", "-b:a", "32k", "-f", "ipod"]),
    "sine.aiff": (_SINE, ["-c:a", "pcm_s16be", "-f", "aiff"]),
}
# Values that tend to break length and count fields.
INTERESTING_U32 = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)
HEADER_BYTES = 128


class FuzzPropertyError(AssertionError):
    """The wrapper broke its promise for some input (the message says how)."""


@dataclass(frozen=True)
class FuzzOutcome:
    """What one input did.

    Args:
        accepted: the file was saved and decoded.
        error: the ``AudioInputError`` subclass's name when it was refused, else None.
        shape: the decoded audio's shape when accepted.
        elapsed_s: wall-clock seconds the whole call took.
    """

    accepted: bool
    error: str | None
    shape: tuple[int, ...] | None
    elapsed_s: float


def make_seed_files(folder: Path) -> dict[str, bytes]:
    """Make the small real files the mutations start from, with ffmpeg's lavfi sources.

    Args:
        folder: where to write them (a temporary folder).

    Returns:
        file name -> bytes.
    """
    folder.mkdir(parents=True, exist_ok=True)
    seeds: dict[str, bytes] = {}
    for name, (source, options) in SEED_RECIPES.items():
        path = folder / name
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-y", *source, *options, str(path)],
            check=True,
            timeout=60,
        )
        seeds[name] = path.read_bytes()
    return seeds


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def _check_audio(audio: object) -> tuple[int, ...]:
    if not isinstance(audio, np.ndarray):
        raise FuzzPropertyError(f"decode returned {type(audio).__name__}, not a numpy array")
    if audio.dtype != np.float32:
        raise FuzzPropertyError(f"decode returned {audio.dtype} samples, not float32")
    most = int((FUZZ_LIMITS.max_duration_s + 0.5) * DECODE_RATE)
    if audio.ndim != 2 or audio.shape[0] != DECODE_CHANNELS or not 0 < audio.shape[1] <= most:
        raise FuzzPropertyError(f"decode returned audio of shape {audio.shape}")
    if not np.all(np.isfinite(audio)) or float(np.max(np.abs(audio))) > 1.0:
        raise FuzzPropertyError("decode returned NaN, infinity or samples outside [-1, 1]")
    return tuple(audio.shape)


async def _save_and_decode(data: bytes, job_dir: Path) -> np.ndarray:
    saved = await save_attachment(data, job_dir, JOB_ID, FUZZ_LIMITS)
    # As the service does when the job runs: decode the stored file again, at the model's rate.
    return await decode(saved.path, DECODE_RATE, DECODE_CHANNELS, FUZZ_LIMITS)


def _run(coroutine: object) -> np.ndarray:
    # A private loop: the caller may be a sync test inside pytest-asyncio's session, whose loop must stay set.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)  # type: ignore[arg-type]
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def fuzz_one(data: bytes) -> FuzzOutcome:
    """Save ``data`` as a member's attachment in a fresh job folder, decode it if accepted, check the property.

    Runs with a sandbox as the working directory, so a relative write by any tool would be seen.

    Args:
        data: the attachment's bytes.

    Returns:
        what happened (accepted with a shape, or refused with the error's class name).

    Raises:
        FuzzPropertyError: the property was broken (wrong result, too slow, a file written where it must not be).
        Exception: any exception other than ``AudioInputError`` escapes as it is: that is a finding.
    """
    root = Path(tempfile.mkdtemp(prefix="jamgen-fuzz-"))
    sandbox = root / "cwd"
    job_dir = root / "jobs" / JOB_ID
    sandbox.mkdir()
    job_dir.mkdir(parents=True)
    started = time.monotonic()
    try:
        with contextlib.chdir(sandbox):
            try:
                audio = _run(_save_and_decode(data, job_dir))
            except AudioInputError as refusal:
                outcome = FuzzOutcome(False, type(refusal).__name__, None, time.monotonic() - started)
                if not str(refusal.message).strip() or "\n" in refusal.message:
                    raise FuzzPropertyError(f"{outcome.error} has no one-line message: {refusal.message!r}") from None
            else:
                outcome = FuzzOutcome(True, None, _check_audio(audio), time.monotonic() - started)
        bound = MAX_TOOL_RUNS * FUZZ_LIMITS.timeout_s + SLACK_S
        if outcome.elapsed_s > bound:
            raise FuzzPropertyError(f"took {outcome.elapsed_s:.1f} s, more than {bound:g} s")
        expected = {"cwd", "jobs", f"jobs/{JOB_ID}"}
        if outcome.accepted:
            expected |= {f"jobs/{JOB_ID}/{name}" for name in os.listdir(job_dir) if name.startswith(f"{JOB_ID}.")}
            if len(expected) != 4:
                raise FuzzPropertyError(f"an accepted file left {sorted(_tree(root))}")
        stray = _tree(root) - expected
        if stray:
            raise FuzzPropertyError(f"files written where they must not be: {sorted(stray)}")
        return outcome
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ---- inputs ----------------------------------------------------------------------------------------------


def _position(draw: st.DrawFn, length: int) -> int:
    # Half the time inside the header, where the fields that steer the parsers are.
    if length <= 0:
        return 0
    high = min(length, HEADER_BYTES) if draw(st.booleans()) else length
    return draw(st.integers(0, high - 1))


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[bytes]) -> bytes:
    """A seed file with 1-6 mutations: flips, interesting integers, truncation, insertion, deletion, splices.

    Args:
        draw: Hypothesis's draw function.
        seeds: real files to start from.
    """
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        operation = draw(st.sampled_from(["flip", "int", "truncate", "insert", "delete", "splice", "repeat"]))
        if operation == "flip" and data:
            at = _position(draw, len(data))
            data[at] ^= draw(st.integers(1, 255))
        elif operation == "int" and len(data) >= 4:
            at = _position(draw, len(data) - 3)
            value = draw(st.sampled_from(INTERESTING_U32))
            data[at : at + 4] = value.to_bytes(4, draw(st.sampled_from(["little", "big"])))
        elif operation == "truncate" and data:
            data = data[: _position(draw, len(data))]
        elif operation == "insert":
            at = _position(draw, len(data) + 1) if data else 0
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif operation == "delete" and data:
            at = _position(draw, len(data))
            del data[at : at + draw(st.integers(1, 64))]
        elif operation == "splice":
            # The header of one file on the body of another (or of itself, shifted).
            other = draw(st.sampled_from(seeds))
            cut = _position(draw, len(data))
            data = data[:cut] + other[_position(draw, len(other)) :]
        elif operation == "repeat" and data:
            at = _position(draw, len(data))
            chunk = data[at : at + draw(st.integers(1, 256))]
            data[at:at] = chunk * draw(st.integers(1, 8))
    return bytes(data)


def attachment_bytes(seeds: Sequence[bytes]) -> st.SearchStrategy[bytes]:
    """Bytes a member could attach: mostly mutated real files, some intact, some random, some magic + noise.

    Args:
        seeds: real files to start from.
    """
    magics = [seed[:12] for seed in seeds] + [b"RIFF", b"ID3", b"fLaC", b"OggS", b"FORM", b"\xff\xfb"]
    return st.one_of(
        mutated(seeds),
        mutated(seeds),
        mutated(seeds),
        st.sampled_from(list(seeds)),
        st.binary(max_size=2048),
        st.builds(lambda magic, tail: magic + tail, st.sampled_from(magics), st.binary(max_size=2048)),
    )
