"""The fake gateway: one bot session over a websocket, with resume, invalid session and close codes.

Frames go out as plain JSON text whatever compression the client asked for (discord.py accepts
that). Every dispatch gets a sequence number and is kept, so a RESUME replays what the client
missed before RESUMED, as Discord does.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from tests.fakediscord.model import PRIVILEGED_INTENTS

if TYPE_CHECKING:
    from tests.fakediscord.server import FakeDiscord

DISPATCH = 0
HEARTBEAT = 1
IDENTIFY = 2
UPDATE_VOICE_STATE = 4
RESUME = 6
RECONNECT = 7
REQUEST_GUILD_MEMBERS = 8
INVALID_SESSION = 9
HELLO = 10
HEARTBEAT_ACK = 11

CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_DISALLOWED_INTENTS = 4014
KEPT_EVENTS = 1000

OnSent = Callable[[float], None]


@dataclass(frozen=True)
class GatewayFrame:
    """A frame the client sent (tokens left out): its opcode, when, and on which URL path."""

    op: int
    at: float
    path: str
    data: Any


@dataclass
class _Sent:
    seq: int
    frame: dict[str, Any]
    on_sent: OnSent | None


class Gateway:
    """The gateway side of one fake: at most one live session for one bot.

    Args:
        fake: the fake Discord (state, guilds, token, limits).
    """

    def __init__(self, fake: FakeDiscord) -> None:
        self._fake = fake
        self.session_id: str | None = None
        self.seq = 0
        self.intents = 0
        self.resumable = True
        self.ack_heartbeats = True
        self.identify_count = 0
        self.resume_count = 0
        self.resumed_count = 0
        self.connection_count = 0
        self.heartbeat_count = 0
        self.received: list[GatewayFrame] = []
        # Close codes of finished connections, as the server saw them.
        self.close_codes: list[int | None] = []
        self._ws: web.WebSocketResponse | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._kept: list[_Sent] = []
        self._lock = asyncio.Lock()
        self._ready = asyncio.Event()

    @property
    def connected(self) -> bool:
        """Whether a session is live on an open socket (READY or RESUMED sent)."""
        return self._ready.is_set() and self._ws is not None and not self._ws.closed

    def wants(self, intent: int) -> bool:
        """Whether the bot identified with this intent.

        Args:
            intent: the intent bit.
        """
        return bool(self.intents & intent)

    async def wait_ready(self, timeout: float) -> None:
        """Wait until a session is live.

        Args:
            timeout: seconds before TimeoutError.
        """
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"the bot has no live gateway session after {timeout}s "
                f"(identifies={self.identify_count}, resumes={self.resume_count}, close codes={self.close_codes})"
            ) from None

    # ---- sending -------------------------------------------------------------------------------

    async def _write(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> bool:
        if ws.closed:
            return False
        try:
            await ws.send_str(json.dumps(frame))
        except (ConnectionError, RuntimeError):
            return False
        return True

    async def dispatch(self, event: str, data: dict[str, Any], on_sent: OnSent | None = None) -> bool:
        """Send a DISPATCH event in this session (kept for replay if the socket is down).

        Args:
            event: the event name, e.g. INTERACTION_CREATE.
            data: its payload.
            on_sent: called with the monotonic time once the frame is on the socket.

        Returns:
            Whether it was written now (False: kept for a RESUME, or no session at all).
        """
        async with self._lock:
            return await self._dispatch_locked(event, data, on_sent)

    async def _dispatch_locked(self, event: str, data: dict[str, Any], on_sent: OnSent | None) -> bool:
        if self.session_id is None:
            return False
        self.seq += 1
        sent = _Sent(self.seq, {"op": DISPATCH, "t": event, "s": self.seq, "d": data}, on_sent)
        self._kept.append(sent)
        del self._kept[:-KEPT_EVENTS]
        ws = self._ws
        if ws is None or not await self._write(ws, sent.frame):
            return False
        if on_sent is not None:
            on_sent(time.monotonic())
        self._fake.notify()
        return True

    # ---- faults --------------------------------------------------------------------------------

    async def drop(self, code: int = 4000, *, resumable: bool = True) -> None:
        """Close the bot's socket with a close code.

        Args:
            code: the close code (4000 makes discord.py RESUME; 4004/4010-4014 are fatal to it).
            resumable: False makes the fake refuse the coming RESUME with INVALID_SESSION(false).
        """
        async with self._lock:
            ws = self._detach()
            self.resumable = resumable
        if ws is not None:
            await ws.close(code=code, message=b"fake Discord dropped the connection")

    async def invalidate_session(self, *, resumable: bool = False) -> None:
        """Send INVALID_SESSION (op 9); with d=false the client must IDENTIFY again.

        Args:
            resumable: the ``d`` of op 9.
        """
        async with self._lock:
            ws = self._detach()
            self.resumable = resumable
            if ws is not None:
                await self._write(ws, {"op": INVALID_SESSION, "d": resumable, "s": None, "t": None})

    async def request_reconnect(self) -> None:
        """Send RECONNECT (op 7): the client closes and RESUMEs."""
        async with self._lock:
            ws = self._detach()
            self.resumable = True
            if ws is not None:
                await self._write(ws, {"op": RECONNECT, "d": None, "s": None, "t": None})

    def _detach(self) -> web.WebSocketResponse | None:
        ws, self._ws = self._ws, None
        self._ready.clear()
        self._fake.notify()
        return ws

    async def close_all(self) -> None:
        """Close every socket (the fake is stopping)."""
        self._detach()
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"fake Discord stopped")

    # ---- the connection ------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """The websocket endpoint (both the gateway URL and the resume URL).

        Args:
            request: the upgrade request.
        """
        ws = web.WebSocketResponse(timeout=2.0, max_msg_size=0)
        await ws.prepare(request)
        self._sockets.add(ws)
        self.connection_count += 1
        hello = {"heartbeat_interval": self._fake.limits.heartbeat_interval_ms, "_trace": ["fake-gateway"]}
        await self._write(ws, {"op": HELLO, "d": hello, "s": None, "t": None})
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await self._on_frame(ws, json.loads(message.data), request.path)
                elif message.type is WSMsgType.ERROR:
                    break
        finally:
            self._sockets.discard(ws)
            self.close_codes.append(ws.close_code)
            async with self._lock:
                if self._ws is ws:
                    self._detach()
            self._fake.notify()
        return ws

    async def _on_frame(self, ws: web.WebSocketResponse, frame: dict[str, Any], path: str) -> None:
        op = frame.get("op")
        data = frame.get("d")
        shown = {k: v for k, v in data.items() if k != "token"} if isinstance(data, dict) else data
        self.received.append(GatewayFrame(op=int(op or -1), at=time.monotonic(), path=path, data=shown))
        if op == HEARTBEAT:
            self.heartbeat_count += 1
            if self.ack_heartbeats:
                await self._write(ws, {"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == IDENTIFY:
            await self._identify(ws, data or {})
        elif op == RESUME:
            await self._resume(ws, data or {})
        elif op == REQUEST_GUILD_MEMBERS:
            await self._send_member_chunk(data or {})
        elif op == UPDATE_VOICE_STATE and self.session_id is not None:
            # docs: events/gateway-events.mdx "Update Voice State"; answered in voice_world.py.
            await self._fake.voice.on_update_voice_state(data or {})
        self._fake.notify()

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        if data.get("token") != self._fake.token:
            await ws.close(code=CLOSE_AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return
        intents = int(data.get("intents") or 0)
        if intents & PRIVILEGED_INTENTS & ~self._fake.allowed_privileged_intents:
            await ws.close(code=CLOSE_DISALLOWED_INTENTS, message=b"Disallowed intent(s).")
            return
        async with self._lock:
            self.identify_count += 1
            self.session_id = secrets.token_hex(16)
            self.seq = 0
            self._kept.clear()
            self.intents = intents
            self.resumable = True
            self._ws = ws
            await self._dispatch_locked("READY", self._fake.ready_payload(self.session_id), None)
            for guild in self._fake.guilds.values():
                await self._dispatch_locked("GUILD_CREATE", guild.payload(), None)
            self._ready.set()
        self._fake.notify()

    async def _resume(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        async with self._lock:
            self.resume_count += 1
            valid = (
                self.resumable
                and self.session_id is not None
                and data.get("session_id") == self.session_id
                and data.get("token") == self._fake.token
            )
            if not valid:
                await self._write(ws, {"op": INVALID_SESSION, "d": False, "s": None, "t": None})
                return
            self._ws = ws
            client_seq = int(data.get("seq") or 0)
            for sent in self._kept:
                if sent.seq > client_seq and await self._write(ws, sent.frame) and sent.on_sent is not None:
                    sent.on_sent(time.monotonic())
            await self._dispatch_locked("RESUMED", {"_trace": ["fake-gateway"]}, None)
            self.resumed_count += 1
            self._ready.set()
        self._fake.notify()

    async def _send_member_chunk(self, data: dict[str, Any]) -> None:
        guild = self._fake.guilds.get(int(data.get("guild_id") or 0))
        if guild is None:
            return
        members = list(guild.members.values())
        wanted = data.get("user_ids")
        if wanted:
            members = [member for member in members if str(member.id) in {str(i) for i in wanted}]
        elif data.get("query"):
            members = [member for member in members if member.user.username.startswith(data["query"])]
        chunk: dict[str, Any] = {
            "guild_id": str(guild.id),
            "members": [member.payload() for member in members],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        if data.get("presences"):
            chunk["presences"] = []
        await self.dispatch("GUILD_MEMBERS_CHUNK", chunk)
