"""The fake voice server's UDP endpoint: IP discovery and RTP reception (decrypt, check, decode Opus).

What arrives is kept as :class:`HeardFrame` s (48 kHz stereo int16 PCM per 20-ms Opus frame, with
its arrival time) on the fake's voice side; what a real voice server would not forward is counted in
``FakeVoice.dropped`` with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from discord.opus import Decoder

from tests.fakediscord.voice_rtp import (
    VoicePacketError,
    ip_discovery_request,
    ip_discovery_response,
    is_dave_frame,
    open_payload,
    parse_rtp,
)

if TYPE_CHECKING:
    from tests.fakediscord.voice_gateway import VoiceServer

BAD_REQUEST = 4020
UNANNOUNCED_LIMIT = 10  # packets (200 ms) without op 5 before the disconnect


@dataclass(frozen=True)
class HeardFrame:
    """One received Opus frame, decoded."""

    at: float  # time.monotonic() on arrival, noted by the reading thread
    guild_id: int
    user_id: int
    ssrc: int
    sequence: int
    timestamp: int
    pcm: bytes  # 48 kHz, 2 channels, int16 little-endian, interleaved


class VoiceUdp:
    """The UDP side of one :class:`VoiceServer`.

    A thread of its own reads the socket and notes each packet's arrival at once, then hands it to the event
    loop: the arrival times (what the tests' gap checks read) measure the sender, not how busy the loop that
    runs the fake (and the bot under test) happens to be.

    Args:
        server: the voice server whose sessions the packets belong to.
    """

    def __init__(self, server: VoiceServer) -> None:
        self.server = server
        self.discoveries: list[tuple[int, tuple[str, int]]] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port = int(self._sock.getsockname()[1])
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start reading on ``loop``'s behalf."""
        self._thread = threading.Thread(target=self._read, args=(loop,), name="fake-voice-udp", daemon=True)
        self._thread.start()

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        while not self._stopped.is_set():
            try:
                data, addr = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            at = time.monotonic()
            try:
                loop.call_soon_threadsafe(self.datagram_received, data, addr, at)
            except RuntimeError:  # the loop is closed
                return

    def close(self) -> None:
        """Stop reading and close the socket."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=1)
        self._sock.close()

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        with contextlib.suppress(OSError):
            self._sock.sendto(data, addr)

    def datagram_received(self, data: bytes, addr: tuple[str, int], at: float) -> None:
        voice = self.server.voice
        ssrc = ip_discovery_request(data)
        if ssrc is not None:
            # docs: "IP Discovery": the answer carries the address and port the request came from.
            self.discoveries.append((ssrc, addr))
            self.sendto(ip_discovery_response(ssrc, addr[0], addr[1]), addr)
            voice.changed()
            return
        try:
            packet = parse_rtp(data)
        except VoicePacketError:
            voice.drop_packet("malformed")
            return
        session = self.server.sessions.get(packet.ssrc)
        if session is None or session.mode is None:
            voice.drop_packet("unknown ssrc")
            return
        try:
            frame = open_payload(packet, session.mode, session.secret_key)
        except VoicePacketError:
            voice.drop_packet("decryption failed")
            return
        if session.speaking is None:
            # docs: "Speaking": audio before any Speaking payload → "disconnected with an invalid SSRC error"
            # (no close code is named; 4020 Bad request is the nearest). UDP and the websocket race, and
            # discord.py sends op 5 as the key arrives, so a few early packets are only dropped.
            voice.drop_packet("no speaking sent")
            session.unannounced += 1
            if session.unannounced == UNANNOUNCED_LIMIT and session.ws is not None:
                asyncio.get_running_loop().create_task(self.server.drop(session, BAD_REQUEST, resumable=False))
            return
        if is_dave_frame(frame):
            # DAVE was declined (dave_protocol_version 0): an E2EE frame cannot be decoded here.
            voice.drop_packet("dave frame")
            return
        if not voice.may_speak(session.guild_id, session.user_id):
            # docs: resources/voice.mdx "suppress": the user's permission to speak is denied; nobody hears it.
            voice.drop_packet("suppressed")
            return
        if session.decoder is None:
            session.decoder = Decoder()
        pcm = session.decoder.decode(frame, fec=False)
        voice.hear(
            HeardFrame(
                at=at,
                guild_id=session.guild_id,
                user_id=session.user_id,
                ssrc=packet.ssrc,
                sequence=packet.sequence,
                timestamp=packet.timestamp,
                pcm=pcm,
            )
        )
