"""The fake's voice side against discord.py's real VoiceClient (PyNaCl, libopus, TLS websocket, UDP)."""

from __future__ import annotations

import asyncio
import io
import ssl
import struct

import aiohttp
import discord
import numpy as np
import pytest

from tests.fakediscord import FakeDiscord, FakeMember
from tests.fakediscord.fixtures import StartBot
from tests.fakediscord.minibot import MiniBot
from tests.fakediscord.permissions import CONNECT, SPEAK
from tests.fakediscord.voice_audio import SAMPLE_RATE, aligned_correlation, audible, gaps, mono
from tests.fakediscord.voice_rtp import (
    ip_discovery_request,
    ip_discovery_response,
    open_payload,
    parse_rtp,
    seal_packet,
)
from tests.fakediscord.voice_tls import certificate

SECONDS = 3.0
OFFERED = "aead_xchacha20_poly1305_rtpsize"


def _signal(seconds: float = SECONDS) -> tuple[bytes, np.ndarray]:
    """A chirp (150 Hz → 3 kHz) with a little noise: PCM bytes for discord.py and the mono reference."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    sweep = np.sin(2 * np.pi * (150 * t + (3000 - 150) * t**2 / (2 * seconds)))
    wave = 0.5 * sweep + 0.05 * np.random.default_rng(7).standard_normal(t.size)
    samples = (np.clip(wave, -1, 1) * 32767).astype("<i2")
    return np.repeat(samples[:, None], 2, axis=1).tobytes(), samples.astype(np.float64) / 32768.0


async def _play(client: discord.VoiceClient, data: bytes, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[Exception | None] = loop.create_future()

    def settle(error: Exception | None) -> None:
        if not finished.done():
            finished.set_result(error)

    def after(error: Exception | None) -> None:
        loop.call_soon_threadsafe(settle, error)

    client.play(discord.PCMAudio(io.BytesIO(data)), after=after)
    assert await asyncio.wait_for(finished, timeout) is None


async def _connect(channel: discord.VoiceChannel, timeout: float) -> discord.VoiceClient:
    return await channel.connect(timeout=timeout, cls=discord.VoiceClient)


async def _voice_bot(fake: FakeDiscord, start_bot: StartBot) -> tuple[MiniBot, discord.VoiceChannel]:
    room = fake.guild.voice_channels()[0]
    bot = MiniBot(sync=False)
    await start_bot(bot)
    channel = bot.get_channel(room.id)
    assert isinstance(channel, discord.VoiceChannel)
    return bot, channel


@pytest.fixture(autouse=True)
def _voice_room(fake_discord: FakeDiscord) -> None:
    fake_discord.guild.add_voice_channel("jam-room")


async def test_played_audio_arrives_decrypted_and_decoded(fake_discord: FakeDiscord, start_bot: StartBot):
    bot, channel = await _voice_bot(fake_discord, start_bot)
    data, reference = _signal()
    client = await _connect(channel, 5)
    assert bot.guilds[0].me.voice is not None
    assert bot.guilds[0].me.voice.channel == channel
    state = fake_discord.voice.state_of(fake_discord.bot_member)
    assert state is not None
    assert state.session_id == fake_discord.gateway.session_id

    await _play(client, data)

    session = fake_discord.voice.bot_session()
    frames = fake_discord.voice.heard_from(fake_discord.bot_user.id)
    assert session.ssrc == client.ssrc
    assert {f.ssrc for f in frames} == {session.ssrc}
    sound = audible(frames)
    assert abs(len(sound) * 0.02 - SECONDS) <= 0.05 * SECONDS
    correlation, offset = aligned_correlation(mono(frames), reference)
    assert correlation >= 0.9
    assert abs(offset) < SAMPLE_RATE // 10  # the codec's delay only
    assert gaps(frames) == []
    # IP discovery answered with the address the client's socket really has.
    server = fake_discord.voice.servers[fake_discord.guild.id]
    assert server.udp is not None
    assert [ssrc for ssrc, _ in server.udp.discoveries] == [client.ssrc]
    assert (client._connection.ip, client._connection.port) == server.udp.discoveries[0][1]
    # The negotiated transport mode, DAVE declined (v0), v8 heartbeats acknowledging numbered messages.
    assert client.mode == session.mode == "aead_xchacha20_poly1305_rtpsize"
    assert session.max_dave_protocol_version >= 1
    assert client._connection.dave_protocol_version == 0
    assert session.heartbeat_seq_acks
    assert session.heartbeat_seq_acks[-1] == session.seq
    assert fake_discord.voice.dropped == {}

    await client.disconnect()
    await fake_discord.wait_for(lambda: not fake_discord.guild.voice_states)
    await fake_discord.wait_for(lambda: bot.guilds[0].me.voice is None)


async def test_a_new_voice_server_keeps_the_audio_going(fake_discord: FakeDiscord, start_bot: StartBot):
    _bot, channel = await _voice_bot(fake_discord, start_bot)
    data, reference = _signal(1.5)
    client = await _connect(channel, 5)
    first = fake_discord.voice.servers[fake_discord.guild.id]
    playing = asyncio.create_task(_play(client, data))
    me = fake_discord.bot_user.id
    await fake_discord.wait_for(lambda: len(fake_discord.voice.heard_from(me)) >= 25, timeout=5)

    moved = await fake_discord.voice.move_server()  # VOICE_SERVER_UPDATE with a new endpoint and token
    await playing
    assert moved.endpoint != first.endpoint
    assert client.endpoint == moved.endpoint
    assert first.close_codes == [4014]  # discord.py closes the old socket itself (voice_state.py)
    frames = fake_discord.voice.heard_from(me)
    assert {f.ssrc for f in frames} == {*first.sessions, *moved.sessions}
    assert abs(len(audible(frames)) * 0.02 - 1.5) <= 0.05 * 1.5
    # Each server's piece lines up with the signal on its own (a packet racing the new key may be lost).
    for ssrc, piece in fake_discord.voice.heard(fake_discord.guild).items():
        assert aligned_correlation(mono(piece), reference)[0] >= 0.9, (ssrc, fake_discord.voice.dropped)
    await client.disconnect()


async def test_after_a_voice_server_crash_discord_py_rejoins_instead_of_resuming(
    fake_discord: FakeDiscord, start_bot: StartBot
):
    # discord.py 2.7.1 answers 4015 by sending op 4 again and waiting for both voice events; the
    # VOICE_SERVER_UPDATE that answers it (docs order: state first) makes it close and wait for a state
    # that never comes, so it gives up after its connect timeout. The bot side must rejoin by itself.
    bot, channel = await _voice_bot(fake_discord, start_bot)
    client = await _connect(channel, 1)
    ops_before = len([f for f in fake_discord.gateway.received if f.op == 4])
    await fake_discord.voice.drop(4015)
    await fake_discord.wait_for(lambda: not bot.voice_clients, timeout=5)
    assert not client.is_connected()
    assert len([f for f in fake_discord.gateway.received if f.op == 4]) > ops_before
    assert 7 not in [op for op, _, _ in fake_discord.voice.received]  # no RESUME was tried
    assert fake_discord.guild.voice_states == {}


async def test_joining_without_connect_gets_no_answer(fake_discord: FakeDiscord, start_bot: StartBot):
    room = fake_discord.guild.voice_channels()[0]
    room.set_overwrite(fake_discord.bot_member, deny=CONNECT)
    _bot, channel = await _voice_bot(fake_discord, start_bot)
    with pytest.raises(asyncio.TimeoutError):
        await _connect(channel, 0.5)
    assert fake_discord.voice.refused_joins[0][1:] == (room.id, "missing CONNECT")
    assert fake_discord.voice.servers == {}
    assert fake_discord.guild.voice_states == {}


async def test_without_speak_the_room_hears_nothing(fake_discord: FakeDiscord, start_bot: StartBot):
    room = fake_discord.guild.voice_channels()[0]
    room.set_overwrite(fake_discord.bot_member, deny=SPEAK)
    bot, channel = await _voice_bot(fake_discord, start_bot)
    client = await _connect(channel, 5)
    assert bot.guilds[0].me.voice is not None
    assert bot.guilds[0].me.voice.suppress
    data, _ = _signal(0.3)
    await _play(client, data)
    assert fake_discord.voice.frames == []
    assert fake_discord.voice.dropped["suppressed"] >= 15
    await client.disconnect()


async def test_members_joining_and_leaving_voice_reach_the_bot(fake_discord: FakeDiscord, start_bot: StartBot):
    room = fake_discord.guild.voice_channels()[0]
    alice: FakeMember = fake_discord.admin
    carol = fake_discord.add_member("carol")
    await fake_discord.voice.join(alice, room)  # before the bot connects: listed in GUILD_CREATE
    bot, channel = await _voice_bot(fake_discord, start_bot)
    assert [m.id for m in channel.members] == [alice.id]
    await fake_discord.voice.join(fake_discord.member, room)
    await fake_discord.wait_for(lambda: len(channel.members) == 2)
    await fake_discord.voice.leave(alice)
    await fake_discord.wait_for(lambda: [m.id for m in channel.members] == [fake_discord.member.id])
    full = fake_discord.guild.add_voice_channel("duo", user_limit=1)
    await fake_discord.voice.join(fake_discord.member, full)
    with pytest.raises(PermissionError, match="channel full"):
        await fake_discord.voice.join(carol, full)
    await fake_discord.voice.join(alice, full)  # MOVE_MEMBERS (an admin) passes the user limit
    assert bot.guilds[0].me.voice is None


async def test_the_bots_voice_state_outlives_its_gateway_session(fake_discord: FakeDiscord, start_bot: StartBot):
    bot, channel = await _voice_bot(fake_discord, start_bot)
    client = await _connect(channel, 1)  # disconnect() waits this long: the new session forgot it
    old_session = fake_discord.gateway.session_id
    identifies = fake_discord.gateway.identify_count
    await fake_discord.invalidate_session()  # a new session: GUILD_CREATE again
    await fake_discord.wait_for(lambda: fake_discord.gateway.identify_count == identifies + 1)
    await fake_discord.gateway.wait_ready(5)
    await bot.wait_until_ready()
    voice = bot.guilds[0].me.voice
    assert voice is not None
    assert voice.channel is not None
    assert voice.channel.id == channel.id
    assert voice.session_id == old_session != fake_discord.gateway.session_id
    await client.disconnect(force=True)


# ---- rules of the voice websocket and UDP endpoint, without a bot --------------------------------------


async def test_voice_gateway_refuses_what_discord_refuses(fake_discord: FakeDiscord):
    server = await fake_discord.voice.server_for(fake_discord.guild.id)
    context = ssl.create_default_context(cafile=str(certificate()[0]))
    async with aiohttp.ClientSession() as http:
        # docs: "Voice Gateway Versioning": no version (or below 4) is rejected.
        for query in ("", "?v=3"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(f"wss://{server.endpoint}/{query}", ssl=context)
            assert refused.value.status == 400
        async with http.ws_connect(f"wss://{server.endpoint}/?v=8", ssl=context) as ws:
            assert (await ws.receive_json())["op"] == 8  # Hello
            await ws.send_json({"op": 1, "d": {"protocol": "udp", "data": {}}})
            await ws.receive(timeout=2)
            assert ws.close_code == 4003  # a payload before identifying
        async with http.ws_connect(f"wss://{server.endpoint}/?v=8", ssl=context) as ws:
            await ws.receive_json()
            ident = {"server_id": str(fake_discord.guild.id), "user_id": "1", "session_id": "x", "token": "nope"}
            await ws.send_json({"op": 0, "d": ident})
            await ws.receive(timeout=2)
            assert ws.close_code == 4004
        async with http.ws_connect(f"wss://{server.endpoint}/?v=8", ssl=context) as ws:
            await ws.receive_json()
            await ws.send_json({"op": 7, "d": {"server_id": "1", "session_id": "x", "token": "t", "seq_ack": -1}})
            await ws.receive(timeout=2)
            assert ws.close_code == 4006  # an unknown session cannot resume
        async with http.ws_connect(f"wss://{server.endpoint}/?v=8", ssl=context) as ws:
            await ws.receive_json()
            await ws.send_json({"op": 99, "d": None})
            await ws.receive(timeout=2)
            assert ws.close_code == 4001


async def test_identify_then_a_bad_mode_or_protocol_is_refused(fake_discord: FakeDiscord, start_bot: StartBot):
    _bot, channel = await _voice_bot(fake_discord, start_bot)
    client = await _connect(channel, 5)
    ticket = fake_discord.voice.tickets[(fake_discord.guild.id, fake_discord.bot_user.id)]
    ident = {
        "server_id": str(ticket.guild_id),
        "user_id": str(ticket.user_id),
        "session_id": ticket.session_id,
        "token": ticket.token,
    }
    server = fake_discord.voice.servers[fake_discord.guild.id]
    context = ssl.create_default_context(cafile=str(certificate()[0]))
    async with aiohttp.ClientSession() as http:
        for select, code in (
            ({"protocol": "udp", "data": {"mode": "xsalsa20_poly1305"}}, 4016),
            ({"protocol": "tcp"}, 4012),
        ):
            async with http.ws_connect(f"wss://{server.endpoint}/?v=8", ssl=context) as ws:
                await ws.receive_json()
                await ws.send_json({"op": 0, "d": ident})
                ready = await ws.receive_json()
                assert ready["op"] == 2
                assert ready["d"]["modes"] == ["aead_xchacha20_poly1305_rtpsize"]
                await ws.send_json({"op": 0, "d": ident})
                await ws.receive(timeout=2)
                assert ws.close_code == 4005  # identified twice
            async with http.ws_connect(f"wss://{server.endpoint}/?v=8", ssl=context) as ws:
                await ws.receive_json()
                await ws.send_json({"op": 0, "d": ident})
                await ws.receive_json()
                await ws.send_json({"op": 1, "d": select})
                await ws.receive(timeout=2)
                assert ws.close_code == code
        # docs: "Resuming Voice Connection" / "Buffered Resume": op 9, then what the client missed.
        select = {"protocol": "udp", "data": {"address": "127.0.0.1", "port": 9, "mode": OFFERED}}
        async with http.ws_connect(f"wss://{server.endpoint}/?v=8", ssl=context) as ws:
            await ws.receive_json()
            await ws.send_json({"op": 0, "d": ident})
            ssrc = (await ws.receive_json())["d"]["ssrc"]
            await ws.send_json({"op": 1, "d": select})
            description = await ws.receive_json()
            assert (description["op"], description["seq"]) == (4, 1)
        resume = {**{k: ident[k] for k in ("server_id", "session_id", "token")}, "seq_ack": -1}
        async with http.ws_connect(f"wss://{server.endpoint}/?v=8", ssl=context) as ws:
            await ws.receive_json()
            await ws.send_json({"op": 7, "d": resume})
            assert (await ws.receive_json(timeout=2)) == {"op": 9, "d": None}
            assert (await ws.receive_json(timeout=2))["d"]["secret_key"] == description["d"]["secret_key"]
            await fake_discord.voice.servers[ticket.guild_id].drop(server.sessions[ssrc], 4006, resumable=False)
        assert server.sessions[ssrc].resumed_count == 1
        async with http.ws_connect(f"wss://{server.endpoint}/?v=8", ssl=context) as ws:
            await ws.receive_json()
            await ws.send_json({"op": 7, "d": resume})
            await ws.receive(timeout=2)
            assert ws.close_code == 4006  # the server ended that session
        async with http.ws_connect(f"wss://{server.endpoint}/?v=8", ssl=context) as ws:
            await ws.receive_json()
            await ws.send_json({"op": 0, "d": {**ident, "session_id": "another"}})
            await ws.receive(timeout=2)
            assert ws.close_code == 4004  # the token belongs to another session
        async with http.ws_connect(f"wss://{server.endpoint}/?v=8", ssl=context) as ws:
            await ws.receive_json()
            await ws.send_json({"op": 7, "d": {**resume, "token": "stale"}})
            await ws.receive(timeout=2)
            assert ws.close_code == 4006
    await client.disconnect()


async def test_udp_answers_ip_discovery_and_strips_header_extensions(fake_discord: FakeDiscord, start_bot: StartBot):
    _bot, channel = await _voice_bot(fake_discord, start_bot)
    client = await _connect(channel, 5)
    session = fake_discord.voice.bot_session()
    request = bytearray(74)
    struct.pack_into(">HHI", request, 0, 1, 70, 42)
    assert ip_discovery_request(bytes(request)) == 42
    assert ip_discovery_request(bytes(request[:70])) is None
    answer = ip_discovery_response(42, "127.0.0.1", 5000)
    assert answer[:8] == struct.pack(">HHI", 2, 70, 42)
    assert answer[8:18] == b"127.0.0.1\x00"
    assert struct.unpack(">H", answer[-2:]) == (5000,)
    opus = discord.opus.Encoder().encode(b"\x00" * 3840, 960)
    sealed = seal_packet(
        sequence=1,
        timestamp=960,
        ssrc=session.ssrc,
        payload=opus,
        key=session.secret_key,
        nonce=7,
        extension=b"\x10\xff\x00\x00",
    )
    assert open_payload(parse_rtp(sealed), session.mode or "", session.secret_key) == opus
    tampered = sealed[:-6] + bytes([sealed[-6] ^ 1]) + sealed[-5:]
    with pytest.raises(ValueError, match="authentication"):
        open_payload(parse_rtp(tampered), session.mode or "", session.secret_key)
    await client.disconnect()


async def test_audio_needs_speaking_first_and_dave_frames_are_not_decoded(
    fake_discord: FakeDiscord, start_bot: StartBot
):
    _bot, channel = await _voice_bot(fake_discord, start_bot)
    client = await _connect(channel, 5)
    ticket = fake_discord.voice.tickets[(fake_discord.guild.id, fake_discord.bot_user.id)]
    ident = {"server_id": str(ticket.guild_id), "user_id": str(ticket.user_id)}
    ident |= {"session_id": ticket.session_id, "token": ticket.token}
    server = fake_discord.voice.servers[fake_discord.guild.id]
    opus = discord.opus.Encoder().encode(b"\x01\x00" * 1920, 960)
    loop = asyncio.get_running_loop()
    udp, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, remote_addr=("127.0.0.1", server.udp_port))
    context = ssl.create_default_context(cafile=str(certificate()[0]))
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(f"wss://{server.endpoint}/?v=8", ssl=context) as ws:
            await ws.receive_json()
            await ws.send_json({"op": 0, "d": ident})
            ssrc = (await ws.receive_json())["d"]["ssrc"]
            select = {"protocol": "udp", "data": {"address": "127.0.0.1", "port": 9, "mode": OFFERED}}
            await ws.send_json({"op": 1, "d": select})
            await ws.receive_json()
            key = server.sessions[ssrc].secret_key
            packet = {"sequence": 1, "timestamp": 0, "ssrc": ssrc, "key": key}
            # docs: "Audio Frame E2EE": a DAVE frame ends with 0xFAFA; with DAVE declined it is not audio.
            server.sessions[ssrc].speaking = 1
            udp.sendto(seal_packet(payload=opus + b"\x00" * 8 + b"\x01\x0b\xfa\xfa", nonce=1, **packet))
            await fake_discord.wait_for(lambda: fake_discord.voice.dropped["dave frame"] == 1)
            # docs: "Speaking": audio before any op 5 gets the client disconnected.
            server.sessions[ssrc].speaking = None
            for nonce in range(2, 12):
                udp.sendto(seal_packet(payload=opus, nonce=nonce, **packet))
            await ws.receive(timeout=2)
            assert ws.close_code == 4020
    finally:
        udp.close()
    assert fake_discord.voice.dropped["no speaking sent"] == 10
    assert all(f.ssrc != ssrc for f in fake_discord.voice.frames)
    await client.disconnect()


async def test_voice_state_updates_need_the_voice_states_intent(fake_discord: FakeDiscord, start_bot: StartBot):
    # docs: events/gateway.mdx "Gateway Intents": VOICE_STATE_UPDATE comes with GUILD_VOICE_STATES.
    intents = discord.Intents.default()
    intents.voice_states = False
    await start_bot(MiniBot(intents=intents, sync=False))
    room = fake_discord.guild.voice_channels()[0]
    before = fake_discord.gateway.seq
    await fake_discord.voice.join(fake_discord.member, room)
    assert fake_discord.gateway.seq == before
    assert fake_discord.guild.voice_states[fake_discord.member.id].channel_id == room.id


async def test_a_kicked_bot_leaves_voice(fake_discord: FakeDiscord, start_bot: StartBot):
    bot, channel = await _voice_bot(fake_discord, start_bot)
    client = await _connect(channel, 2)
    await fake_discord.voice.kick()
    await fake_discord.wait_for(lambda: not bot.voice_clients and not client.is_connected(), timeout=5)
    assert bot.guilds[0].me.voice is None
