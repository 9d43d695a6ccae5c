"""One fake voice server: the voice websocket (TLS, gateway v8) and its UDP endpoint.

docs: topics/voice-connections.mdx (identify → Ready with ssrc/ip/port/modes, Hello and v8
heartbeats with ``seq_ack``, Select Protocol → Session Description, Speaking, Resume → Resumed with
re-sent buffered messages) and topics/opcodes-and-status-codes.mdx "Voice" (opcodes, close codes).
DAVE is declined: Session Description says ``dave_protocol_version: 0`` (docs: "may be any
non-discontinued protocol version equal to or less than your supported protocol version").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from tests.fakediscord.voice_tls import server_context
from tests.fakediscord.voice_udp import VoiceUdp

if TYPE_CHECKING:
    from discord.opus import Decoder

    from tests.fakediscord.voice_world import FakeVoice

# Voice opcodes (topics/opcodes-and-status-codes.mdx "Voice Opcodes").
IDENTIFY, SELECT_PROTOCOL, READY, HEARTBEAT, SESSION_DESCRIPTION, SPEAKING = 0, 1, 2, 3, 4, 5
HEARTBEAT_ACK, RESUME, HELLO, RESUMED, CLIENTS_CONNECT, CLIENT_DISCONNECT = 6, 7, 8, 9, 11, 13
DAVE_TRANSITION_READY, DAVE_MLS_INVALID_COMMIT_WELCOME = 23, 31
CLIENT_OPS = {IDENTIFY, SELECT_PROTOCOL, HEARTBEAT, SPEAKING, RESUME}
CLIENT_OPS |= {DAVE_TRANSITION_READY, DAVE_MLS_INVALID_COMMIT_WELCOME}
CLIENT_BINARY_OPS = {26, 28}  # DAVE MLS key package, commit/welcome (binary, client → server)
# Voice close codes (topics/opcodes-and-status-codes.mdx "Voice Close Event Codes").
UNKNOWN_OPCODE, FAILED_TO_DECODE, NOT_AUTHENTICATED, AUTHENTICATION_FAILED = 4001, 4002, 4003, 4004
ALREADY_AUTHENTICATED, SESSION_NO_LONGER_VALID, UNKNOWN_PROTOCOL = 4005, 4006, 4012
DISCONNECTED, SERVER_CRASHED, UNKNOWN_ENCRYPTION_MODE, BAD_REQUEST = 4014, 4015, 4016, 4020
# docs: "Transport Encryption Modes": always includes xchacha20; aes256-gcm "depending on the underlying
# hardware" — this server has none (PyNaCl cannot decrypt it), which the docs allow.
OFFERED_MODES = ["aead_xchacha20_poly1305_rtpsize"]
MIN_VERSION = 4
KEPT_MESSAGES = 100


@dataclass
class VoiceSession:
    """One identified voice connection (a user in a guild's voice channel) on one server."""

    guild_id: int
    user_id: int
    channel_id: int
    session_id: str
    token: str
    ssrc: int
    secret_key: bytes = field(default_factory=lambda: os.urandom(32))
    max_dave_protocol_version: int = 0
    mode: str | None = None
    client_address: tuple[str, int] | None = None
    speaking: int | None = None  # None until the first Speaking (op 5)
    unannounced: int = 0  # audio packets that came before any Speaking
    resumable: bool = True
    ws: web.WebSocketResponse | None = None
    seq: int = 0
    kept: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    heartbeat_seq_acks: list[Any] = field(default_factory=list)
    resume_seq_acks: list[Any] = field(default_factory=list)
    resumed_count: int = 0
    decoder: Decoder | None = None


class VoiceServer:
    """A voice server for one guild: a TLS websocket and a UDP socket on 127.0.0.1 ports of their own.

    Args:
        voice: the fake's voice side (tickets, voice states, what was heard).
        guild_id: the guild it serves.
    """

    def __init__(self, voice: FakeVoice, guild_id: int) -> None:
        self.voice = voice
        self.guild_id = guild_id
        self.sessions: dict[int, VoiceSession] = {}  # by SSRC
        self.heartbeat_interval_ms = 1000
        self.close_codes: list[int | None] = []  # of the sockets that ended, as the server saw them
        self.connections = 0
        self.port = 0
        self.udp: VoiceUdp | None = None
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()

    @property
    def endpoint(self) -> str:
        """What VOICE_SERVER_UPDATE carries: host and port, no scheme (docs: "does not contain a URL protocol")."""
        return f"127.0.0.1:{self.port}"

    @property
    def udp_port(self) -> int:
        """The UDP port announced in Ready."""
        return self.udp.port if self.udp is not None else 0

    async def start(self) -> None:
        """Listen: websocket over TLS and the UDP endpoint."""
        app = web.Application()
        app.router.add_get("/", self.handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock, ssl_context=server_context()).start()
        self.udp = VoiceUdp(self)
        self.udp.start(asyncio.get_running_loop())

    async def stop(self) -> None:
        """Close every socket and stop listening."""
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"fake voice server stopped")
        if self.udp is not None:
            self.udp.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def session_of(self, user_id: int) -> VoiceSession | None:
        """The newest session of a user here."""
        found = [s for s in self.sessions.values() if s.user_id == user_id]
        return found[-1] if found else None

    # ---- sending ---------------------------------------------------------------------------------

    async def _send(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        if not ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(json.dumps(frame))

    async def send(self, session: VoiceSession, op: int, data: Any) -> None:
        """Send a numbered message (kept so that a resume can re-send it, docs: "Buffered Resume").

        Args:
            session: the session.
            op: the opcode.
            data: its ``d``.
        """
        session.seq += 1
        frame = {"op": op, "d": data, "seq": session.seq}
        session.kept.append((session.seq, frame))
        del session.kept[:-KEPT_MESSAGES]
        if session.ws is not None:
            await self._send(session.ws, frame)

    async def drop(self, session: VoiceSession, code: int, *, resumable: bool = True) -> None:
        """Close a session's websocket with a close code.

        Args:
            session: the session.
            code: the close code (4015: the client should resume; 4014/4022: it should not reconnect).
            resumable: False makes a coming resume fail with 4006.
        """
        session.resumable = resumable
        ws, session.ws = session.ws, None
        if ws is not None:
            await ws.close(code=code, message=b"fake voice server closed the connection")

    # ---- the websocket ---------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The voice websocket endpoint (``wss://endpoint/?v=8``).

        Args:
            request: the upgrade request.
        """
        version = request.query.get("v", "")
        # docs: "Voice Gateway Versioning": no version, or one below 4, is rejected.
        if not version.isdigit() or int(version) < MIN_VERSION:
            return web.Response(status=400, text="voice gateway version 4 or newer required")
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self._sockets.add(ws)
        self.connections += 1
        await self._send(ws, {"op": HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
        bound: list[VoiceSession] = []
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await self._on_text(ws, message.data, bound)
                elif message.type is WSMsgType.BINARY:
                    await self._on_binary(ws, bytes(message.data), bound)
                elif message.type is WSMsgType.ERROR:
                    break
        finally:
            self._sockets.discard(ws)
            self.close_codes.append(ws.close_code)
            for session in bound:
                if session.ws is ws:
                    session.ws = None
            self.voice.changed()
        return ws

    async def _on_binary(self, ws: web.WebSocketResponse, data: bytes, bound: list[VoiceSession]) -> None:
        # docs: "Binary Websocket Messages": client → server frames are opcode + payload (no sequence).
        if not bound:
            await ws.close(code=NOT_AUTHENTICATED, message=b"Not authenticated.")
        elif not data or data[0] not in CLIENT_BINARY_OPS:
            await ws.close(code=UNKNOWN_OPCODE, message=b"Unknown opcode.")
        else:
            self.voice.dave_messages.append((bound[-1].user_id, data[0], len(data) - 1))

    async def _on_text(self, ws: web.WebSocketResponse, text: str, bound: list[VoiceSession]) -> None:
        try:
            frame = json.loads(text)
            op, data = frame["op"], frame.get("d")
        except (ValueError, KeyError, TypeError):
            await ws.close(code=FAILED_TO_DECODE, message=b"Failed to decode payload.")
            return
        self.voice.received.append((op, time.monotonic(), _without_token(data)))
        if op not in CLIENT_OPS:
            await ws.close(code=UNKNOWN_OPCODE, message=b"Unknown opcode.")
        elif op == HEARTBEAT:
            await self._heartbeat(ws, data, bound)
        elif op == IDENTIFY:
            await self._identify(ws, data if isinstance(data, dict) else {}, bound)
        elif op == RESUME:
            await self._resume(ws, data if isinstance(data, dict) else {}, bound)
        elif not bound:
            # docs: 4003 "You sent a payload before identifying".
            await ws.close(code=NOT_AUTHENTICATED, message=b"Not authenticated.")
        elif op == SELECT_PROTOCOL:
            await self._select_protocol(ws, bound[-1], data if isinstance(data, dict) else {})
        elif op == SPEAKING:
            bound[-1].speaking = int((data or {}).get("speaking") or 0)
        self.voice.changed()

    async def _heartbeat(self, ws: web.WebSocketResponse, data: Any, bound: list[VoiceSession]) -> None:
        # docs: "Heartbeating": since v8 the heartbeat is {t, seq_ack} and the ACK echoes {t}.
        nonce = data.get("t") if isinstance(data, dict) else data
        if bound:
            bound[-1].heartbeat_seq_acks.append(data.get("seq_ack") if isinstance(data, dict) else None)
        await self._send(ws, {"op": HEARTBEAT_ACK, "d": {"t": nonce}})

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any], bound: list[VoiceSession]) -> None:
        if bound:
            await ws.close(code=ALREADY_AUTHENTICATED, message=b"Already authenticated.")
            return
        ticket = self.voice.ticket_for(self.guild_id, str(data.get("token")))
        expected = (str(self.guild_id), ticket and str(ticket.user_id), ticket and ticket.session_id)
        if ticket is None or (data.get("server_id"), data.get("user_id"), data.get("session_id")) != expected:
            await ws.close(code=AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return
        session = VoiceSession(
            guild_id=self.guild_id,
            user_id=ticket.user_id,
            channel_id=ticket.channel_id,
            session_id=ticket.session_id,
            token=ticket.token,
            ssrc=self.voice.next_ssrc(),
            max_dave_protocol_version=int(data.get("max_dave_protocol_version") or 0),
            ws=ws,
        )
        self.sessions[session.ssrc] = session
        bound.append(session)
        ready = {
            "ssrc": session.ssrc,
            "ip": "127.0.0.1",
            "port": self.udp_port,
            "modes": list(OFFERED_MODES),
            "heartbeat_interval": 1,  # docs: "an erroneous field and should be ignored"
        }
        await self._send(ws, {"op": READY, "d": ready})
        others = self.voice.users_in(self.guild_id, session.channel_id, but=session.user_id)
        if others:
            await self.send(session, CLIENTS_CONNECT, {"user_ids": [str(u) for u in others]})

    async def _select_protocol(self, ws: web.WebSocketResponse, session: VoiceSession, data: dict[str, Any]) -> None:
        raw = data.get("data")
        details: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if data.get("protocol") != "udp":
            await ws.close(code=UNKNOWN_PROTOCOL, message=b"Unknown protocol.")
            return
        if details.get("mode") not in OFFERED_MODES:
            await ws.close(code=UNKNOWN_ENCRYPTION_MODE, message=b"Unknown encryption mode.")
            return
        session.mode = str(details["mode"])
        session.client_address = (str(details.get("address")), int(details.get("port") or 0))
        description = {"mode": session.mode, "secret_key": list(session.secret_key), "dave_protocol_version": 0}
        await self.send(session, SESSION_DESCRIPTION, description)

    async def _resume(self, ws: web.WebSocketResponse, data: dict[str, Any], bound: list[VoiceSession]) -> None:
        session = next(
            (
                s
                for s in reversed(self.sessions.values())
                if (str(s.guild_id), s.session_id, s.token)
                == (data.get("server_id"), data.get("session_id"), data.get("token"))
            ),
            None,
        )
        if session is None or not session.resumable or bound or not self.voice.ticket_current(session):
            # docs: "Resuming Voice Connection": an unsuccessful resume closes with the close code (4006).
            await ws.close(code=SESSION_NO_LONGER_VALID, message=b"Session no longer valid.")
            return
        session.resume_seq_acks.append(data.get("seq_ack"))
        session.ws = ws
        session.resumed_count += 1
        bound.append(session)
        await self._send(ws, {"op": RESUMED, "d": None})
        seq_ack = data.get("seq_ack")
        acked = int(seq_ack) if isinstance(seq_ack, int) else -1
        # docs: "Buffered Resume": the messages the client did not receive are sent again.
        for seq, frame in session.kept:
            if seq > acked:
                await self._send(ws, frame)


def _without_token(data: Any) -> Any:
    return {k: v for k, v in data.items() if k != "token"} if isinstance(data, dict) else data
