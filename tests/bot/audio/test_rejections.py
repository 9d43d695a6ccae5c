"""Hostile and broken files: each refused with its own message, nothing fetched, nothing written elsewhere."""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.audio import (
    AudioFileTooLargeError,
    AudioLimits,
    AudioTooLongError,
    AudioTooShortError,
    DamagedAudioError,
    EmptyAudioFileError,
    NoAudioStreamError,
    NotAudioError,
    PlaylistNotAllowedError,
    TooManyChannelsError,
    UnsupportedAudioFormatError,
    load_input,
    save_attachment,
    style_excerpt,
)
from bot.audio.probe import run_ffprobe

LIMITS = AudioLimits(timeout_s=15)


@dataclass(frozen=True)
class Case:
    file: str
    error: type[Exception]
    message: str
    limits: AudioLimits = field(default=LIMITS)
    style: bool = False


CASES = [
    Case("empty.mp3", EmptyAudioFileError, "This file is empty (0 bytes)."),
    Case("random.mp3", NotAudioError, "does not look like audio"),
    Case("png.wav", NotAudioError, "This file is a PNG image, not audio."),
    Case("zip.flac", NotAudioError, "This file is a ZIP archive, not audio."),
    Case("truncated.mp3", DamagedAudioError, "This MP3 file is damaged or cut off (it stops after"),
    Case("truncated.flac", DamagedAudioError, "This FLAC file is damaged or cut off (it stops after"),
    Case("lying.wav", DamagedAudioError, "its header says it holds 10 s of audio, but the file ends after 1.0 s"),
    Case("hls_local.mp3", PlaylistNotAllowedError, "This file is an HLS/M3U playlist"),
    Case("hls_net.mp3", PlaylistNotAllowedError, "This file is an HLS/M3U playlist"),
    Case("concat.mp3", PlaylistNotAllowedError, "This file is an ffmpeg concat script"),
    Case("stream.sdp", PlaylistNotAllowedError, "stream description (SDP)"),
    Case("three-hours.opus", AudioTooLongError, "This audio is 3 h 0 min long; the limit is 10 min."),
    Case("twelve-channels.wav", TooManyChannelsError, "This file has 12 channels; at most 8 are accepted."),
    Case(
        "half-second.wav",
        AudioTooShortError,
        "Style needs at least 1.5 s of audio; this file has 0.5 s.",
        style=True,
    ),
    Case("silent-video.mp4", NoAudioStreamError, "This video has no sound track"),
    Case("hostile-path", NotAudioError, "This file is a text file, not audio."),
    Case("song.wma", UnsupportedAudioFormatError, "This file is a WMA/WMV (ASF) file"),
    Case("wavpack.mka", UnsupportedAudioFormatError, "encoded as WavPack"),
    Case("song.mid", NotAudioError, "MIDI file (notes, not sound"),
    Case("tags-only.mp3", DamagedAudioError, "holds only tags and no sound"),
    Case("valid:wav", AudioFileTooLargeError, "the limit is 0.1 MiB", limits=AudioLimits(max_bytes=100 * 1024)),
]


def _listing(*roots: Path) -> set[str]:
    seen: set[str] = set()
    for root in roots:
        seen |= {str(p) for p in root.rglob("*")} if root.exists() else set()
    return seen


class Listener:
    """A plain asyncio server on 127.0.0.1 that counts who connects."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()

    async def __aenter__(self) -> Listener:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]


def _write_net_playlist(corpus, port: int) -> Path:
    path = corpus.root / "bad" / "hls_net.mp3"
    path.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nhttp://127.0.0.1:{port}/seg.ts\n#EXT-X-ENDLIST\n")
    return path


async def _refusal(case: Case, path: Path, job_dir: Path, job_id: str) -> list[str]:
    """Run one case through the CLI entry (a path) and the Discord entry (bytes); return what went wrong."""
    problems = []
    for entry in ("load_input", "save_attachment"):
        try:
            if entry == "load_input":
                loaded = await load_input(path, 32000, 2, case.limits)
            else:
                saved = await save_attachment(path.read_bytes(), job_dir, job_id, case.limits)
                loaded = await load_input(saved.path, 32000, 2, case.limits)
            if case.style:
                style_excerpt(loaded.audio, loaded.sample_rate)
        except Exception as error:
            # Exact class: a timeout (InputTimeoutError) must not pass for a "damaged" verdict.
            if type(error) is not case.error or case.message not in str(error):
                problems.append(f"{case.file} via {entry}: {type(error).__name__}: {error}")
        else:
            problems.append(f"{case.file} via {entry}: accepted")
    return problems


@pytest.mark.slow
async def test_hostile_corpus_is_refused_with_its_message_and_reaches_nothing(corpus, tmp_path):
    job_root = tmp_path / "jobs"
    job_dir = job_root / "job-42"
    async with Listener() as listener:
        files = dict(corpus.files)
        files["hls_net.mp3"] = _write_net_playlist(corpus, listener.port)
        files["valid:wav"] = corpus.valid["wav"]
        before = _listing(corpus.root, tmp_path)
        cwd_before = set(Path.cwd().iterdir())
        problems: list[str] = []
        for number, case in enumerate(CASES):
            job_id = f"job42-{number}"
            problems += await _refusal(case, files[case.file], job_dir, job_id)
            if case.style:
                # Accepted as audio and saved; refused only as a style reference.
                leftovers = {p.name for p in job_dir.iterdir()} - {f"{job_id}.wav"}
            else:
                leftovers = {p.name for p in job_dir.iterdir()} if job_dir.exists() else set()
            if leftovers:
                problems.append(f"{case.file}: left {sorted(leftovers)} in the job folder")
            for path in job_dir.glob("*"):
                path.unlink()
        await asyncio.sleep(0.05)  # let a late connection attempt land before counting
        assert listener.connections == 0
    assert problems == []
    assert len(CASES) >= 15
    after = _listing(corpus.root, tmp_path)
    assert after - before == {str(job_root), str(job_dir)}
    assert set(Path.cwd().iterdir()) == cwd_before
    assert not any(p.name == "PWNED" for p in corpus.root.rglob("*"))
    assert not (Path.cwd() / "PWNED").exists()


async def test_a_hostile_file_name_changes_nothing_for_a_good_file(corpus, tmp_path):
    hostile = corpus.files["hostile-good"]
    loaded = await load_input(hostile, 32000, 1, LIMITS)
    assert loaded.audio.shape[0] == 1
    assert abs(loaded.duration_s - 2.0) < 0.05
    saved = await save_attachment(hostile.read_bytes(), tmp_path / "job", "job-7", LIMITS)
    assert saved.path == tmp_path / "job" / "job-7.flac"
    assert [p.name for p in (tmp_path / "job").iterdir()] == ["job-7.flac"]
    assert not any(p.name == "PWNED" for p in corpus.root.rglob("*"))


@pytest.mark.parametrize("job_id", ["../evil", "a/b", ".hidden", "", "x" * 65, "ok id", "$(id)"])
async def test_unsafe_job_ids_are_refused_before_anything_is_written(corpus, tmp_path, job_id):
    with pytest.raises(ValueError, match="unsafe job id"):
        await save_attachment(corpus.valid["wav"].read_bytes(), tmp_path / "job", job_id, LIMITS)
    assert not (tmp_path / "job").exists()


async def test_the_format_whitelist_alone_stops_playlists_and_scripts(corpus):
    # Second line of defence: even without the sniffed -f, ffprobe may not pick the hls/concat demuxers.
    async with Listener() as listener:
        playlist = _write_net_playlist(corpus, listener.port)
        for path in (playlist, corpus.files["hls_local.mp3"], corpus.files["concat.mp3"]):
            assert await run_ffprobe(path, None, LIMITS) is None
        await asyncio.sleep(0.05)
        assert listener.connections == 0


async def test_the_listener_notices_a_connection():
    # Control: the zero-connection assertions above can fail.
    async with Listener() as listener:
        _, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        writer.close()
        await asyncio.sleep(0.05)
        assert listener.connections == 1


@pytest.mark.parametrize("script", ["hls_local.mp3", "concat.mp3"])
async def test_a_bare_ffmpeg_reads_a_neighbouring_file_through_the_script_that_we_refuse(corpus, script):
    # Control: without the guards, these scripts make ffmpeg read another file next to them.
    path = corpus.files[script]
    process = await asyncio.create_subprocess_exec(
        "ffmpeg",
        "-nostdin",
        "-v",
        "quiet",
        "-i",
        str(path),
        "-f",
        "s16le",
        "pipe:1",
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    stolen, _ = await asyncio.wait_for(process.communicate(), timeout=20)
    assert len(stolen) > 44100  # about a second or more of the neighbour's sound
    with pytest.raises(PlaylistNotAllowedError):
        await load_input(path, 32000, 1, LIMITS)
    assert await run_ffprobe(path, None, LIMITS) is None
