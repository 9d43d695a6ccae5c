"""Voice jams end to end: the real bot plays a jam's takes in a voice channel of the fake Discord, whose voice
server decrypts and decodes what arrives over UDP (tests/fakediscord/voice_*.py; DAVE is declined there, see
docs/SESSIONS.md)."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bot.engine.registry import get_model_spec
from bot.engine.types import GenerationRequest
from tests.cogs.test_buttons import custom_id
from tests.cogs.test_sessions import generate_in, start_jam
from tests.fakediscord.permissions import CONNECT, SPEAK
from tests.fakediscord.voice_audio import SAMPLE_RATE, aligned_correlation, audible, gaps, mono
from tests.harness import job_id_of

TAKE_S = 2
NUMBER = re.compile(r"take (\d)")


def chirp_take(request: GenerationRequest) -> np.ndarray:
    """A take the room can tell apart from the others: a chirp whose range follows the prompt's number."""
    spec = get_model_spec(request.model)
    n = round(request.duration * spec.sample_rate)
    t = np.arange(n, dtype=np.float64) / spec.sample_rate
    k = int(match.group(1)) if (match := NUMBER.search(request.prompt)) else 0
    low, high = 150.0 + 120 * k, 900.0 + 500 * k
    sweep = 0.4 * np.sin(2 * np.pi * (low * t + (high - low) * t**2 / (2 * request.duration)))
    return np.stack([sweep.astype(np.float32)] * spec.channels)


@pytest.fixture(autouse=True)
def _voice_room(fake_discord, monkeypatch):
    # Before the bot connects, so GUILD_CREATE lists it; takes the room can tell apart.
    fake_discord.guild.add_voice_channel("jam-room")
    monkeypatch.setattr("tests.harness.sine_take", chirp_take)


@pytest.fixture
def world_overrides() -> dict[str, str]:
    return {"JAMGEN_VOICE_IDLE_MINUTES": "0.02"}  # 1.2 s


def room_of(jam):
    return jam.fake.guild.voice_channels()[0]


def reference(mp3: bytes, tmp_path: Path) -> np.ndarray:
    """The take's MP3 as a member hears it when downloading it: mono float at 48 kHz."""
    path = tmp_path / "take.mp3"
    path.write_bytes(mp3)
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0


def mp3_of(message) -> bytes:
    return next(a for a in message.attachments if a.filename.endswith(".mp3")).data


async def join_voice(jam, thread, *, user=None, **options):
    """The members join the room; ``/session voice`` by the jam's starter; returns the private answer."""
    room = room_of(jam)
    for member in (jam.fake.admin, jam.fake.member):
        if jam.fake.voice.state_of(member) is None:
            await jam.fake.voice.join(member, room)
    interaction = await jam.fake.slash("session voice", options, user=user or jam.fake.admin, channel=thread)
    return await interaction.wait_for_message(lambda m: m.ephemeral and "Thinking" not in m.content, timeout=20)


def bot_in_voice(jam) -> bool:
    return jam.fake.voice.state_of(jam.fake.bot_member) is not None


def heard(jam):
    return jam.fake.voice.heard_from(jam.fake.bot_user.id)


def now_playing(jam, thread) -> list[str]:
    """The takes the thread was told are playing, in order."""
    lines = [m.content for m in jam.fake.bot_messages(thread) if "Now playing" in m.content]
    return [match.group(1) for line in lines if (match := re.search(r"`(\w+)`", line))]


async def wait_played(jam, count: int, timeout: float = 30.0) -> None:
    """Until ``count`` tracks were announced and nothing plays any more."""

    def done() -> bool:
        announced = sum("Now playing" in m.content for m in jam.fake.bot_messages())
        return announced >= count and not any(vc.is_playing() for vc in jam.bot.voice_clients)

    await jam.fake.wait_for(done, timeout=timeout)


async def wait_heard(jam, seconds: float, timeout: float = 30.0) -> None:
    await jam.fake.wait_for(lambda: len(audible(heard(jam))) * 0.02 >= seconds, timeout=timeout)


async def test_three_takes_play_in_the_order_they_were_made_each_as_its_mp3(jam, tmp_path):
    thread, _session = await start_jam(jam)
    answer = await join_voice(jam, thread)
    assert "plays this jam in" in answer.content
    await jam.fake.wait_for(lambda: bot_in_voice(jam), timeout=10)

    takes = []
    for number in (1, 2, 3):  # each take is made while the one before plays
        takes.append(await generate_in(jam, thread, f"take {number}", jam.fake.member, duration=TAKE_S))
    refs = [reference(mp3_of(take), tmp_path) for take in takes]
    await wait_played(jam, 3)

    frames = heard(jam)
    received = mono(frames)
    starts = []
    for take, ref in zip(takes, refs, strict=True):
        correlation, offset = aligned_correlation(received, ref)
        assert correlation >= 0.9, (job_id_of(take), correlation)
        start = -offset
        starts.append(start)
        first, last = start // 960, (start + len(ref)) // 960
        inside = frames[max(first, 0) : last]
        assert abs(len(audible(inside)) * 0.02 - len(ref) / SAMPLE_RATE) <= 0.05 * len(ref) / SAMPLE_RATE
        assert gaps(inside) == []  # no pause over 200 ms inside a take
    assert starts == sorted(starts)
    assert now_playing(jam, thread) == [job_id_of(t) for t in takes]


async def test_skip_play_and_the_play_button(jam, tmp_path):
    thread, _session = await start_jam(jam)
    await join_voice(jam, thread)
    first = await generate_in(jam, thread, "take 1", jam.fake.member, duration=3)
    await jam.fake.wait_for(lambda: len(audible(heard(jam))) > 10, timeout=20)
    skip = await jam.fake.slash("session skip", {}, user=jam.fake.member, channel=thread)
    said = await skip.wait_for_message(lambda m: "Skipped" in m.content, timeout=10)
    assert job_id_of(first) in said.content
    await asyncio.sleep(0.3)
    cut = len(audible(heard(jam)))
    assert cut * 0.02 < 2.5  # the 3-s take stopped

    queued = await jam.fake.slash("session play", {"job_id": job_id_of(first)}, user=jam.fake.member, channel=thread)
    assert "Queued" in (await queued.wait_for_message(lambda m: "Queued" in m.content, timeout=10)).content
    click = await jam.fake.click(first, custom_id(first, "play"), user=jam.fake.admin)
    assert "#" in (await click.wait_for_message(lambda m: "Queued" in m.content, timeout=10)).content
    bounce = await jam.fake.slash("session play", {"bounce": job_id_of(first)}, user=jam.fake.member, channel=thread)
    said = await bounce.wait_for_message(lambda m: "Queued" in m.content, timeout=20)
    assert f"the bounce of `{job_id_of(first)}` (1 takes)" in said.content
    await wait_heard(jam, cut * 0.02 + 2 * 3 * 0.95)
    ref = reference(mp3_of(first), tmp_path)
    assert aligned_correlation(mono(heard(jam))[-len(ref) :], ref)[0] >= 0.9


async def test_the_bot_leaves_an_empty_room_and_an_ended_jam(jam):
    thread, _session = await start_jam(jam)
    await join_voice(jam, thread)
    await jam.fake.wait_for(lambda: bot_in_voice(jam), timeout=10)
    await jam.fake.voice.leave(jam.fake.member)
    await asyncio.sleep(1.5)  # past a member leaving, one listener is left: the bot stays
    assert bot_in_voice(jam)
    await jam.fake.voice.leave(jam.fake.admin)
    loop = asyncio.get_running_loop()
    emptied = loop.time()
    await jam.fake.wait_for(lambda: not bot_in_voice(jam), timeout=10)
    assert loop.time() - emptied < 1.2 + 1.0  # the idle setting (1.2 s) and a margin
    await jam.fake.wait_for(lambda: any("nobody was listening" in m.content for m in jam.fake.bot_messages(thread)))

    await join_voice(jam, thread)
    await jam.fake.wait_for(lambda: bot_in_voice(jam), timeout=10)
    end = await jam.fake.slash("session end", {}, user=jam.fake.admin, channel=thread)
    await end.wait_for_response()
    await jam.fake.wait_for(lambda: not bot_in_voice(jam) and not jam.bot.voice_clients, timeout=10)


async def test_without_connect_or_speak_jamgen_says_so_and_stays_out(jam):
    thread, _session = await start_jam(jam)
    room = room_of(jam)
    room.set_overwrite(jam.fake.bot_member, deny=CONNECT | SPEAK)
    answer = await join_voice(jam, thread)
    assert "needs Connect, Speak" in answer.content
    assert jam.fake.voice.refused_joins == []  # it never tried
    assert not bot_in_voice(jam)


async def test_a_moved_voice_server_and_a_crashed_one_do_not_stop_the_jam(jam, tmp_path, monkeypatch):
    # discord.py gives a crashed voice server up after the connect timeout (10 s): shorter here.
    monkeypatch.setattr("bot.discord.voice.CONNECT_TIMEOUT_S", 2.0)
    monkeypatch.setattr("bot.discord.voice.RECONNECT_WAIT_S", 1.0)
    thread, _session = await start_jam(jam)
    await join_voice(jam, thread)
    first = await generate_in(jam, thread, "take 1", jam.fake.member, duration=3)
    await jam.fake.wait_for(lambda: len(audible(heard(jam))) > 25, timeout=20)
    await jam.fake.voice.move_server()
    await wait_heard(jam, 3 * 0.95)
    await jam.fake.voice.drop(4015)  # discord.py gives up on it: jamgen connects again by itself
    second = await generate_in(jam, thread, "take 2", jam.fake.member, duration=TAKE_S)
    await wait_heard(jam, (3 + TAKE_S) * 0.95, timeout=40)
    ref = reference(mp3_of(second), tmp_path)
    assert aligned_correlation(mono(heard(jam)), ref)[0] >= 0.9
    assert job_id_of(first) != job_id_of(second)


async def test_a_restart_mid_playback_rejoins_with_a_fresh_connection(jam, tmp_path):
    thread, _session = await start_jam(jam)
    await join_voice(jam, thread)
    await generate_in(jam, thread, "take 1", jam.fake.member, duration=3)
    await jam.fake.wait_for(lambda: len(audible(heard(jam))) > 10, timeout=20)
    await jam.restart()
    await jam.fake.wait_for(
        lambda: (
            (state := jam.fake.voice.state_of(jam.fake.bot_member)) is not None
            and state.session_id == jam.fake.gateway.session_id
        ),
        timeout=20,
    )
    assert len(jam.bot.voice_clients) == 1
    before = len(audible(heard(jam)))
    second = await generate_in(jam, thread, "take 2", jam.fake.member, duration=TAKE_S)
    await wait_heard(jam, before * 0.02 + TAKE_S * 0.95)
    ref = reference(mp3_of(second), tmp_path)
    assert aligned_correlation(mono(heard(jam)), ref)[0] >= 0.9
