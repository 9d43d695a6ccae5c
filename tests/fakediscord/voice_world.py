"""The fake's voice side (``fake.voice``): voice states, op 4, voice servers, what was heard.

docs: events/gateway-events.mdx "Update Voice State" (op 4), "Voice State Update" (a voice state
object, GUILD_VOICE_STATES intent, events/gateway.mdx "Gateway Intents"), "Voice Server Update"
(token, guild_id, endpoint; also sent "when the current voice instance fails over to a new server");
topics/voice-connections.mdx "Retrieving Voice Server Information" (op 4 is answered by both events,
a new token each time; a full channel gets no answer unless MOVE_MEMBERS); resources/voice.mdx
"Voice State Object".

Modelled beyond the docs (they say nothing): joining without VIEW_CHANNEL + CONNECT is answered like
a full channel (no events; discord.py's ``connect()`` times out), as Discord does; the bot's voice
state outlives its gateway session (a restarted bot finds itself still listed in the channel in
GUILD_CREATE until it sends op 4 itself, or a test calls :meth:`FakeVoice.expire`).
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.fakediscord.entities import GUILD_VOICE
from tests.fakediscord.permissions import CONNECT, MOVE_MEMBERS, SPEAK, VIEW_CHANNEL, channel_permissions
from tests.fakediscord.voice_gateway import CLIENT_DISCONNECT, CLIENTS_CONNECT, VoiceServer, VoiceSession
from tests.fakediscord.voice_tls import trust_fake_voice, untrust
from tests.fakediscord.voice_udp import HeardFrame

if TYPE_CHECKING:
    from tests.fakediscord.model import FakeChannel, FakeGuild, FakeMember
    from tests.fakediscord.server import FakeDiscord

INTENT_GUILD_VOICE_STATES = 1 << 7
VOICE_ALLOCATION_SECONDS = 0.02


@dataclass
class FakeVoiceState:
    """A user's voice connection status (resources/voice.mdx "Voice State Object")."""

    guild_id: int
    user_id: int
    channel_id: int
    session_id: str
    self_mute: bool = False
    self_deaf: bool = False
    suppress: bool = False

    def payload(self, member: FakeMember | None, *, with_guild_id: bool = True) -> dict[str, Any]:
        """The voice state object (GUILD_CREATE's lacks ``guild_id``, docs: gateway-events.mdx "Guild Create").

        Args:
            member: the member, sent along as ``member``.
            with_guild_id: include ``guild_id``.
        """
        body: dict[str, Any] = {
            "channel_id": str(self.channel_id),
            "user_id": str(self.user_id),
            "session_id": self.session_id,
            "deaf": False,
            "mute": False,
            "self_deaf": self.self_deaf,
            "self_mute": self.self_mute,
            "self_stream": False,
            "self_video": False,
            "suppress": self.suppress,
            "request_to_speak_timestamp": None,
        }
        if with_guild_id:
            body["guild_id"] = str(self.guild_id)
        if member is not None:
            body["member"] = member.payload()
        return body


@dataclass(frozen=True)
class VoiceTicket:
    """What VOICE_SERVER_UPDATE handed out: the voice websocket's identify must match it."""

    guild_id: int
    user_id: int
    channel_id: int
    session_id: str
    token: str


class FakeVoice:
    """The voice side of one :class:`FakeDiscord` (``fake.voice``).

    Args:
        fake: the fake Discord.
    """

    def __init__(self, fake: FakeDiscord) -> None:
        self._fake = fake
        self.servers: dict[int, VoiceServer] = {}  # the current server of each guild
        self.retired: list[VoiceServer] = []  # servers a guild moved away from
        self.tickets: dict[tuple[int, int], VoiceTicket] = {}  # (guild, user) → the latest
        self.frames: list[HeardFrame] = []
        self.dropped: Counter[str] = Counter()
        # Op 4 requests that got no answer, with the reason: (user id, channel id, reason).
        self.refused_joins: list[tuple[int, int, str]] = []
        self.received: list[tuple[int, float, Any]] = []  # voice websocket frames (op, at, d without token)
        self.dave_messages: list[tuple[int, int, int]] = []  # (user id, binary opcode, payload size)
        self._ssrcs = itertools.count(1000)
        self._trusting = False

    # ---- plumbing ------------------------------------------------------------------------------------

    def changed(self) -> None:
        """Wake waiters (``fake.wait_for``)."""
        self._fake.notify()

    def next_ssrc(self) -> int:
        """A fresh SSRC."""
        return next(self._ssrcs)

    def drop_packet(self, reason: str) -> None:
        """Count a datagram the voice server did not forward.

        Args:
            reason: why.
        """
        self.dropped[reason] += 1
        self.changed()

    def hear(self, frame: HeardFrame) -> None:
        """Keep a received frame.

        Args:
            frame: the decoded frame.
        """
        self.frames.append(frame)
        self.changed()

    async def stop(self) -> None:
        """Stop every voice server (the fake is stopping)."""
        for server in [*self.servers.values(), *self.retired]:
            await server.stop()
        self.servers.clear()
        if self._trusting:
            untrust()
            self._trusting = False

    async def server_for(self, guild_id: int) -> VoiceServer:
        """The guild's current voice server, started (with the TLS trust) on first use.

        Args:
            guild_id: the guild.
        """
        server = self.servers.get(guild_id)
        if server is None:
            if not self._trusting:
                trust_fake_voice()
                self._trusting = True
            server = VoiceServer(self, guild_id)
            await server.start()
            self.servers[guild_id] = server
        return server

    # ---- tickets and who is where ----------------------------------------------------------------

    def ticket_for(self, guild_id: int, token: str) -> VoiceTicket | None:
        """The live ticket with this token in the guild.

        Args:
            guild_id: the guild.
            token: the voice token from the identify.
        """
        return next((t for t in self.tickets.values() if t.guild_id == guild_id and t.token == token), None)

    def ticket_current(self, session: VoiceSession) -> bool:
        """Whether a session's token is still its user's latest (a channel change makes a new one).

        Args:
            session: the session.
        """
        ticket = self.tickets.get((session.guild_id, session.user_id))
        return ticket is not None and ticket.token == session.token

    def users_in(self, guild_id: int, channel_id: int, *, but: int = 0) -> list[int]:
        """Users whose voice state is in a channel.

        Args:
            guild_id: the guild.
            channel_id: the voice channel.
            but: leave this user out.
        """
        guild = self._fake.guilds[guild_id]
        return [uid for uid, s in guild.voice_states.items() if s.channel_id == channel_id and uid != but]

    def may_speak(self, guild_id: int, user_id: int) -> bool:
        """Whether a user's audio reaches the channel: connected and not suppressed (SPEAK).

        Args:
            guild_id: the guild.
            user_id: the user.
        """
        state = self._fake.guilds[guild_id].voice_states.get(user_id)
        return state is not None and not state.suppress

    def state_of(self, member: FakeMember) -> FakeVoiceState | None:
        """A member's voice state.

        Args:
            member: the member.
        """
        return member.guild.voice_states.get(member.id)

    # ---- joining and leaving -------------------------------------------------------------------------

    async def on_update_voice_state(self, data: dict[str, Any]) -> None:
        """The bot's Update Voice State (gateway op 4).

        Args:
            data: the op's ``d``.
        """
        guild = self._fake.guilds.get(int(data.get("guild_id") or 0))
        if guild is None:
            return
        member = guild.members[self._fake.bot_user.id]
        raw_channel = data.get("channel_id")
        if raw_channel is None:
            await self.leave(member)
            return
        channel = guild.channels.get(int(raw_channel))
        refusal = self._refusal(guild, member, channel)
        if channel is None or refusal is not None:
            self.refused_joins.append((member.id, int(raw_channel), refusal or "unknown channel"))
            self.changed()
            return
        session_id = self._fake.gateway.session_id or secrets.token_hex(16)
        await self._enter(member, channel, session_id, bool(data.get("self_mute")), bool(data.get("self_deaf")))
        server = await self.server_for(guild.id)
        # On Discord the server update comes from the voice allocation, milliseconds after the state update.
        # Back to back, discord.py misses it: voice_state.py's _wait_for_state sets and clears an Event, and
        # a state change between its check and its next wait is lost (the connect then times out).
        await asyncio.sleep(VOICE_ALLOCATION_SECONDS)
        ticket = VoiceTicket(guild.id, member.id, channel.id, session_id, secrets.token_hex(8))
        self.tickets[(guild.id, member.id)] = ticket
        await self._send_server_update(ticket, server)

    def _refusal(self, guild: FakeGuild, member: FakeMember, channel: FakeChannel | None) -> str | None:
        if channel is None or channel.type != GUILD_VOICE:
            return "not a voice channel"
        bits = channel_permissions(guild, member, channel)
        if bits & (VIEW_CHANNEL | CONNECT) != VIEW_CHANNEL | CONNECT:
            return "missing CONNECT"
        # docs: voice-connections.mdx: a full channel gets no events unless the bot has MOVE_MEMBERS.
        present = self.users_in(guild.id, channel.id, but=member.id)
        if channel.user_limit and len(present) >= channel.user_limit and not bits & MOVE_MEMBERS:
            return "channel full"
        return None

    async def _send_server_update(self, ticket: VoiceTicket, server: VoiceServer) -> None:
        payload = {"token": ticket.token, "guild_id": str(ticket.guild_id), "endpoint": server.endpoint}
        await self._fake.gateway.dispatch("VOICE_SERVER_UPDATE", payload)

    async def _enter(
        self, member: FakeMember, channel: FakeChannel, session_id: str, self_mute: bool, self_deaf: bool
    ) -> FakeVoiceState:
        guild = member.guild
        previous = guild.voice_states.get(member.id)
        # docs: resources/voice.mdx "suppress": whether this user's permission to speak is denied.
        speak = channel_permissions(guild, member, channel) & SPEAK
        state = FakeVoiceState(guild.id, member.id, channel.id, session_id, self_mute, self_deaf, suppress=not speak)
        guild.voice_states[member.id] = state
        await self._dispatch_state(state.payload(member))
        if previous is not None and previous.channel_id != channel.id:
            await self._tell_bot_sessions(guild.id, previous.channel_id, CLIENT_DISCONNECT, {"user_id": str(member.id)})
        if previous is None or previous.channel_id != channel.id:
            await self._tell_bot_sessions(guild.id, channel.id, CLIENTS_CONNECT, {"user_ids": [str(member.id)]})
        return state

    async def join(self, member: FakeMember, channel: FakeChannel, *, self_mute: bool = False) -> FakeVoiceState:
        """A member (not the bot) joins or moves to a voice channel: VOICE_STATE_UPDATE, and op 11 to the bot's call.

        Args:
            member: the member.
            channel: a voice channel.
            self_mute: whether they are muted.

        Raises:
            PermissionError: the member may not connect there (Discord's client would not let them).
        """
        refusal = self._refusal(member.guild, member, channel)
        if refusal is not None:
            raise PermissionError(f"{member.user.username} cannot join {channel.name}: {refusal}")
        return await self._enter(member, channel, secrets.token_hex(16), self_mute, False)

    async def leave(self, member: FakeMember) -> None:
        """A member (or the bot, by op 4 with a null channel) leaves voice: VOICE_STATE_UPDATE with channel_id null.

        Args:
            member: the member.
        """
        guild = member.guild
        state = guild.voice_states.pop(member.id, None)
        if state is None:
            return
        payload = state.payload(member)
        payload["channel_id"] = None
        await self._dispatch_state(payload)
        if member.id == self._fake.bot_user.id:
            self.tickets.pop((guild.id, member.id), None)
        else:
            await self._tell_bot_sessions(guild.id, state.channel_id, CLIENT_DISCONNECT, {"user_id": str(member.id)})

    async def expire(self, guild: FakeGuild | None = None) -> None:
        """Discord gives up on the bot's stale voice state (its old session died): VOICE_STATE_UPDATE, channel null.

        Args:
            guild: the guild; the first one when None.
        """
        await self.leave((guild or self._fake.guild).members[self._fake.bot_user.id])

    async def _dispatch_state(self, payload: dict[str, Any]) -> None:
        if self._fake.gateway.session_id is not None and self._fake.gateway.wants(INTENT_GUILD_VOICE_STATES):
            await self._fake.gateway.dispatch("VOICE_STATE_UPDATE", payload)

    async def _tell_bot_sessions(self, guild_id: int, channel_id: int, op: int, data: dict[str, Any]) -> None:
        server = self.servers.get(guild_id)
        if server is None:
            return
        for session in list(server.sessions.values()):
            if session.channel_id == channel_id and session.ws is not None and self.ticket_current(session):
                await server.send(session, op, data)

    # ---- faults -------------------------------------------------------------------------------------

    def bot_session(self, guild: FakeGuild | None = None) -> VoiceSession:
        """The bot's current voice session in a guild (the first guild when None).

        Args:
            guild: the guild.
        """
        guild_id = (guild or self._fake.guild).id
        server = self.servers[guild_id]
        session = server.session_of(self._fake.bot_user.id)
        if session is None:
            raise LookupError("the bot has no voice session on the current voice server")
        return session

    async def drop(self, code: int = 4015, *, guild: FakeGuild | None = None, resumable: bool = True) -> None:
        """Close the bot's voice websocket with a close code (4015: discord.py resumes).

        Args:
            code: the close code.
            guild: the guild; the first one when None.
            resumable: False makes the coming resume fail with 4006 Session no longer valid.
        """
        guild_id = (guild or self._fake.guild).id
        await self.servers[guild_id].drop(self.bot_session(guild), code, resumable=resumable)

    async def kick(self, guild: FakeGuild | None = None) -> None:
        """Someone disconnects the bot from voice: VOICE_STATE_UPDATE (channel null), then voice close 4014.

        Args:
            guild: the guild; the first one when None.
        """
        guild = guild or self._fake.guild
        session = self.bot_session(guild)
        await self.leave(guild.members[self._fake.bot_user.id])
        # docs: opcodes-and-status-codes.mdx 4014 "Disconnect individual client (you were kicked ...)".
        await self.servers[guild.id].drop(session, 4014, resumable=False)

    async def move_server(self, guild: FakeGuild | None = None) -> VoiceServer:
        """Fail the guild's voice over to a new server: VOICE_SERVER_UPDATE with a new endpoint and token.

        Args:
            guild: the guild; the first one when None.
        """
        guild_id = (guild or self._fake.guild).id
        old = self.servers.pop(guild_id, None)
        if old is not None:
            self.retired.append(old)
        server = await self.server_for(guild_id)
        ticket = self.tickets[(guild_id, self._fake.bot_user.id)]
        moved = VoiceTicket(guild_id, ticket.user_id, ticket.channel_id, ticket.session_id, secrets.token_hex(8))
        self.tickets[(guild_id, ticket.user_id)] = moved
        await self._send_server_update(moved, server)
        return server

    # ---- what was heard ------------------------------------------------------------------------------

    def heard(self, guild: FakeGuild | None = None) -> dict[int, list[HeardFrame]]:
        """Received frames per SSRC, in arrival order.

        Args:
            guild: only this guild's; all when None.
        """
        result: dict[int, list[HeardFrame]] = {}
        for frame in self.frames:
            if guild is None or frame.guild_id == guild.id:
                result.setdefault(frame.ssrc, []).append(frame)
        return result

    def heard_from(self, user_id: int, guild: FakeGuild | None = None) -> list[HeardFrame]:
        """A user's frames over all its SSRCs (a reconnect gets a new one), in arrival order.

        Args:
            user_id: the sender.
            guild: only this guild's; all when None.
        """
        return [f for f in self.frames if f.user_id == user_id and (guild is None or f.guild_id == guild.id)]
