"""Item 4: bad input through Discord attachments and through the CLI.

The hostile corpus of the audio room (tests/bot/audio: truncated, lying, playlists that point at
the network, archives, MIDI, three hours of Opus, twelve channels, a shell script with a hostile
name...) goes through ``/melody`` and ``/style`` on Discord and through ``jamgen generate --melody``
on the command line, together with oversized attachments, attachments whose declared size lies,
and prompts with mentions, markdown, zero-width characters and 10 000 characters. Each gets its
own clear sentence; nothing crashes, nothing is charged, nothing connects out, memory stays bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import tracemalloc
from pathlib import Path

import pytest

from tests.bot.audio.conftest import _build as build_audio_corpus
from tests.bot.audio.test_rejections import CASES, Listener, _write_net_playlist
from tests.harness import job_id_of, rss_mib, submit, track_posts, wait_state, wav_bytes

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
REPO = Path(__file__).resolve().parents[2]
LIE_ACTUAL_BYTES = 100 * MIB

# Runs `jamgen` (bot.cli.main) once per argument list in one process, each with its own environment
# overrides, and reports the exit code and what it printed: the CLI as a user runs it, minus the
# start-up cost of one Python per file.
CLI_DRIVER = r"""
import contextlib, io, json, os, resource, sys
from bot.cli import main
results = []
for case in json.load(sys.stdin):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    saved = dict(os.environ)
    os.environ.update(case["env"])
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(case["argv"])
    except SystemExit as exit:
        code = exit.code
    except BaseException as crash:
        code = f"crash: {type(crash).__name__}: {crash}"
    finally:
        os.environ.clear()
        os.environ.update(saved)
    results.append({"name": case["name"], "code": code, "stderr": err.getvalue()[-3000:],
                    "stdout": out.getvalue()[-300:],
                    "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                    # what this case itself added to the process's peak
                    "grew_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024})
print(json.dumps(results))
"""


class EndlessFile:
    """An HTTP server on 127.0.0.1 that streams a file of ``size`` bytes and counts what it got to send.

    It stands in for the CDN behind an attachment that declares a small size and is really huge;
    it makes its bytes as it goes (its own memory stays flat) and stops when the reader hangs up.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.sent = 0
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        head = f"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nContent-Length: {self.size}\r\n\r\n"
        chunk = b"RIFF" + bytes(64 * 1024 - 4)
        try:
            writer.write(head.encode())
            while self.sent < self.size:
                writer.write(chunk)
                await writer.drain()
                self.sent += len(chunk)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> EndlessFile:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/lies.wav"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_audio_corpus(tmp_path_factory.mktemp("audio-corpus"))


def discord_name(case_file: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", Path(case_file).name)[-40:] or "file.bin"


def cli_cases(files: dict[str, Path], out_dir: Path) -> list[dict]:
    cases = []
    for case in CASES:
        mode, model = ("--style", "debug-style") if case.style else ("--melody", "debug-melody")
        env = {"JAMGEN_MAX_ATTACHMENT_MB": "0.1"} if case.file == "valid:wav" else {}
        cases.append(
            {
                "name": case.file,
                "argv": ["generate", "x", mode, str(files[case.file]), "--model", model, "-o", str(out_dir / "o.mp3")],
                "env": env,
            }
        )
    # A prompt with everything at once, 10 000 characters long: the CLI makes the take (nothing is
    # charged on the command line) and keeps the prompt intact in the recipe it prints.
    nasty = ("@everyone <@&1> **bold** ||x|| l\u200bo\u200bf\u200bi " * 400)[:10_000]
    cases.append(
        {
            "name": "nasty-prompt",
            "argv": ["generate", nasty, "--model", "debug", "--duration", "1", "-o", str(out_dir / "nasty.mp3")],
            "env": {},
        }
    )
    return cases


async def run_cli(cases: list[dict], tmp_path: Path) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAMGEN_", "DISCORD_"))}
    env |= {"JAMGEN_DEBUG_MODELS": "true", "JAMGEN_CPU_THREADS": "1", "JAMGEN_DATA_DIR": str(tmp_path / "cli-data")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLI_DRIVER,
        cwd=tmp_path,
        env=env | {"PYTHONPATH": str(REPO)},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    process.stdin.write(json.dumps(cases).encode())
    await process.stdin.drain()
    process.stdin.close()
    return process


async def test_hostile_files_through_discord_and_the_cli(world, corpus, tmp_path):
    fake = world.fake
    async with Listener() as listener:
        files = dict(corpus.files)
        files["hls_net.mp3"] = _write_net_playlist(corpus, listener.port)
        files["valid:wav"] = corpus.valid["wav"]
        cli = await run_cli(cli_cases(files, tmp_path), tmp_path)

        # --- Discord: every corpus file as an attachment, all at once
        discord_cases = [c for c in CASES if c.file != "valid:wav"]  # the size limit is tested below
        lie = fake.attachment("lies.wav", b"RIFF", content_type="audio/wav", size=MIB)
        huge = fake.attachment("huge.wav", wav_bytes(1.0), content_type="audio/wav", size=30 * MIB)
        rss_before = rss_mib()
        asked = []
        for case in discord_cases:
            data = files[case.file].read_bytes()
            attachment = fake.attachment(discord_name(case.file), data, content_type="audio/mpeg")
            if case.style:
                asked.append((case, await fake.slash("style", {"audio": attachment, "prompt": "x"})))
            else:
                options = {"audio": attachment, "prompt": "x", "model": "debug-melody"}
                asked.append((case, await fake.slash("melody", options)))
        problems = []
        for case, interaction in asked:
            answer = await interaction.wait_for_message(lambda m: "⚠️" in m.content, timeout=60)
            if case.message not in answer.content:
                problems.append(f"{case.file}: {answer.content!r}")
        assert problems == []

        # --- declared 30 MiB: refused on the declaration, never downloaded
        interaction = await fake.slash("melody", {"audio": huge, "prompt": "x", "model": "debug-melody"})
        answer = await interaction.wait_for_message(lambda m: "⚠️" in m.content, timeout=30)
        assert "This file is 30 MiB; the limit is 25 MiB" in answer.content
        assert fake.requests_to("GET", "/cdn/*/huge.wav") == []

        # --- declared 1 MiB, really 100 MiB: the download stops at the limit
        async with EndlessFile(LIE_ACTUAL_BYTES) as endless:
            lie.url = endless.url
            tracemalloc.start()
            try:
                interaction = await fake.slash("melody", {"audio": lie, "prompt": "x", "model": "debug-melody"})
                answer = await interaction.wait_for_message(lambda m: "⚠️" in m.content, timeout=60)
                _, lie_peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            await asyncio.sleep(0.1)
        assert "the limit is 25 MiB" in answer.content
        # It hung up soon after the limit (socket buffers hold a few MiB more), not at 100 MiB.
        assert endless.sent < 40 * MIB, f"the bot took {endless.sent / MIB:.0f} MiB of a lying attachment"
        assert lie_peak < 40 * MIB, f"reading the lying attachment took {lie_peak / MIB:.0f} MiB"
        rss_growth = rss_mib() - rss_before

        await asyncio.sleep(0.1)  # a late connection attempt would land now
        assert listener.connections == 0
        out, err = await asyncio.wait_for(cli.communicate(), 120)
    assert cli.returncode == 0, err.decode()[-3000:]

    # Nothing was charged and no job exists: every refusal came before the store.
    assert await world.all_jobs() == []
    assert (await world.service.quota(fake.member.id, fake.guild.id)).used == 0
    staging = world.settings.data_dir / "staging"
    assert [p for p in staging.rglob("*") if p.is_file()] == []
    assert rss_growth < 150, f"resident memory grew by {rss_growth:.0f} MiB"
    assert not any(p.name == "PWNED" for p in corpus.root.rglob("*"))
    assert not (tmp_path / "PWNED").exists()

    # --- the CLI: exit 2 and one `error:` line with the same sentence, no traceback
    results = {r["name"]: r for r in json.loads(out)}
    cli_problems = []
    for case in CASES:
        result = results[case.file]
        lines = [line for line in result["stderr"].splitlines() if line.startswith("error: ")]
        if result["code"] != 2 or len(lines) != 1 or case.message not in lines[0] or "Traceback" in result["stderr"]:
            cli_problems.append(f"{case.file}: exit {result['code']}: {result['stderr'][-300:]}")
    assert cli_problems == []
    nasty = results["nasty-prompt"]
    assert nasty["code"] == 0, nasty["stderr"]
    assert (tmp_path / "nasty.mp3").stat().st_size > 0
    cli_rss = max(r["grew_mib"] for r in results.values() if r["name"] != "nasty-prompt")
    assert cli_rss < 1024, f"one hostile file grew the CLI by {cli_rss:.0f} MiB: " + str(
        [(r["name"], round(r["maxrss_mib"]), round(r["grew_mib"])) for r in results.values()]
    )
    print(
        f"\nbad input: {len(discord_cases) + 2} hostile attachments refused on Discord, {len(CASES)} on the CLI; "
        f"lying 100 MiB attachment: {endless.sent / MIB:.1f} MiB sent, {lie_peak / MIB:.1f} MiB peak; "
        f"bot RSS growth {rss_growth:.1f} MiB; "
        f"CLI peak RSS {cli_rss:.0f} MiB; outbound connections {listener.connections}"
    )


async def test_prompts_with_mentions_markdown_zero_width_and_10000_characters(world):
    fake = world.fake
    admin_role = next(r for r in fake.guild.roles.values() if r.name == "Admin")
    prompts = {
        "mentions": (f"@everyone @here <@&{admin_role.id}> <@{fake.admin.id}> party", fake.member),
        "markdown": ("**bold** __under__ `code` ||spoiler|| [link](https://example.com) # loud", fake.add_member("m1")),
        "zero-width": ("\u200b\u200d\ufeff", fake.add_member("m2")),
        "zero-width-inside": ("l\u200bo\u200bf\u200bi", fake.add_member("m3")),
    }
    jobs = {}
    for name, (prompt, member) in prompts.items():
        jobs[name] = (await submit(world, prompt, user=member))[1]
    for name, job_id in jobs.items():
        job = await wait_state(world.store, job_id, "delivered", "failed", timeout=60)
        assert job.state.value == "delivered", (name, job.error)
        assert job.prompt == prompts[name][0]
        (post,) = track_posts(fake, job_id)
        # Nobody is pinged but the member who asked, whatever the prompt says.
        assert not post.mention_everyone
        assert post.mention_role_ids == []
        assert set(post.mention_ids) <= {prompts[name][1].id}
        title = post.embeds[0]["title"] if post.embeds else post.text.split("### ", 1)[1].split("\n", 1)[0]
        assert title == prompts[name][0]

    # The longest prompt Discord's client lets through a slash option: refused, politely, free.
    member = fake.add_member("m4")
    interaction = await fake.slash("generate", {"prompt": "y" * 2000}, user=member)
    answer = await interaction.wait_for_message(lambda m: "⚠️" in m.content, timeout=10)
    assert "Your prompt is 2000 characters long; the limit is 500" in answer.content

    # 10 000 characters in a reply to a track (a message is the only way that long): refused, free.
    take = next(m for m in fake.bot_messages() if job_id_of(m) == jobs["markdown"])
    await fake.post_message(
        f"<@{fake.bot_user.id}> continue: " + "z" * 10_000, reply_to=take, mention_author=True, author=member
    )
    refusal = await fake.wait_for_message(lambda m: "10000 characters" in m.content, timeout=10)
    assert "⚠️" in refusal.content
    assert (await world.service.quota(member.id, fake.guild.id)).used == 0
    assert len(await world.all_jobs()) == len(jobs)
