"""The voice UDP wire format: IP discovery, RTP headers and transport encryption, as Discord documents them.

docs: topics/voice-connections.mdx "IP Discovery" (74-byte request/response), "Voice Packet Structure"
(0x80, payload type 0x78, big-endian sequence, timestamp, SSRC), "Transport Encryption Modes" (the
*_rtpsize modes: the RTP header, CSRCs and the extension preamble stay in clear and are the AEAD's
additional data; a 32-bit incrementing nonce is appended to the payload and stripped before
decrypting) and "Audio Frame E2EE" (a DAVE frame ends with the magic marker 0xFAFA).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import nacl.bindings

XCHACHA_RTPSIZE = "aead_xchacha20_poly1305_rtpsize"
AES_GCM_RTPSIZE = "aead_aes256_gcm_rtpsize"
IP_DISCOVERY_SIZE = 74
IP_DISCOVERY_REQUEST = 1
IP_DISCOVERY_RESPONSE = 2
RTP_PAYLOAD_TYPE = 0x78
NONCE_SIZE = 4
DAVE_MAGIC = b"\xfa\xfa"
OPUS_SILENCE = b"\xf8\xff\xfe"


class VoicePacketError(ValueError):
    """A datagram the voice server cannot use (malformed, or it fails authentication)."""


def ip_discovery_request(data: bytes) -> int | None:
    """The SSRC of an IP discovery request, or None when the datagram is not one.

    Args:
        data: the datagram.
    """
    if len(data) != IP_DISCOVERY_SIZE:
        return None
    kind, length, ssrc = struct.unpack_from(">HHI", data, 0)
    # docs: "IP Discovery": type 0x1 request, length 70 (the message without type and length).
    if kind != IP_DISCOVERY_REQUEST or length != IP_DISCOVERY_SIZE - 4:
        return None
    return int(ssrc)


def ip_discovery_response(ssrc: int, address: str, port: int) -> bytes:
    """The 74-byte answer: type 0x2, length 70, SSRC, the address null-terminated in 64 bytes, the port.

    Args:
        ssrc: the requester's SSRC.
        address: the address the datagram came from.
        port: the port it came from.
    """
    packet = bytearray(IP_DISCOVERY_SIZE)
    struct.pack_into(">HHI", packet, 0, IP_DISCOVERY_RESPONSE, IP_DISCOVERY_SIZE - 4, ssrc)
    raw = address.encode("ascii")[:63]
    packet[8 : 8 + len(raw)] = raw
    struct.pack_into(">H", packet, IP_DISCOVERY_SIZE - 2, port)
    return bytes(packet)


@dataclass(frozen=True)
class RtpPacket:
    """An RTP packet split as the rtpsize modes see it."""

    sequence: int
    timestamp: int
    ssrc: int
    header: bytes  # fixed header, CSRCs and the extension preamble: sent in clear, authenticated
    extension_words: int  # 32-bit words of extension body, encrypted at the start of the payload
    ciphertext: bytes
    nonce: bytes


def parse_rtp(data: bytes) -> RtpPacket:
    """Split an RTP voice packet.

    Args:
        data: the datagram.
    """
    if len(data) < 12 + NONCE_SIZE or data[0] & 0xC0 != 0x80:
        raise VoicePacketError("not an RTP version 2 packet")
    if data[1] & 0x7F != RTP_PAYLOAD_TYPE:
        raise VoicePacketError(f"RTP payload type {data[1] & 0x7F}, Discord voice uses {RTP_PAYLOAD_TYPE}")
    sequence, timestamp, ssrc = struct.unpack_from(">HII", data, 2)
    size = 12 + 4 * (data[0] & 0x0F)  # CSRCs
    words = 0
    if data[0] & 0x10:
        # docs: "Transport Encryption Modes": like SRTP, the extension preamble (profile, length) is header.
        if len(data) < size + 4 + NONCE_SIZE:
            raise VoicePacketError("truncated RTP header extension")
        words = struct.unpack_from(">H", data, size + 2)[0]
        size += 4
    if len(data) < size + NONCE_SIZE:
        raise VoicePacketError("RTP packet shorter than its header")
    return RtpPacket(
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        header=bytes(data[:size]),
        extension_words=words,
        ciphertext=bytes(data[size:-NONCE_SIZE]),
        nonce=bytes(data[-NONCE_SIZE:]),
    )


def open_payload(packet: RtpPacket, mode: str, key: bytes) -> bytes:
    """Decrypt a packet's payload and drop its header extension body: what is left is the (Opus) frame.

    Args:
        packet: the parsed packet.
        mode: the negotiated transport encryption mode.
        key: the session's 32-byte secret key.
    """
    if mode != XCHACHA_RTPSIZE:
        raise VoicePacketError(f"the fake voice server does not decrypt {mode}")
    # docs: the 4-byte nonce is the low bytes of the 24-byte XChaCha20 nonce, the rest zero.
    nonce = packet.nonce + bytes(24 - NONCE_SIZE)
    try:
        plain = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(packet.ciphertext, packet.header, nonce, key)
    except Exception as error:  # nacl raises CryptoError; anything else is as unusable
        raise VoicePacketError("payload failed authentication") from error
    return bytes(plain[4 * packet.extension_words :])


def seal_packet(
    *,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload: bytes,
    key: bytes,
    nonce: int,
    extension: bytes = b"",
) -> bytes:
    """Build an aead_xchacha20_poly1305_rtpsize packet, optionally with a header extension (tests use it).

    Args:
        sequence: RTP sequence number.
        timestamp: RTP timestamp.
        ssrc: the sender's SSRC.
        payload: the Opus frame.
        key: the 32-byte secret key.
        nonce: the 32-bit counter.
        extension: an extension body (a multiple of 4 bytes; profile 0xBEDE), encrypted with the payload.
    """
    first = 0x90 if extension else 0x80
    header = struct.pack(">BBHII", first, RTP_PAYLOAD_TYPE, sequence, timestamp, ssrc)
    if extension:
        header += struct.pack(">HH", 0xBEDE, len(extension) // 4)
    counter = struct.pack(">I", nonce)
    sealed = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        extension + payload, header, counter + bytes(24 - NONCE_SIZE), key
    )
    return header + sealed + counter


def is_dave_frame(frame: bytes) -> bool:
    """Whether a decrypted frame is a DAVE (E2EE) protocol frame: it ends with the 0xFAFA marker.

    Args:
        frame: the transport-decrypted payload.
    """
    return len(frame) > 11 and frame.endswith(DAVE_MAGIC)
