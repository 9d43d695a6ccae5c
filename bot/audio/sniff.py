"""Telling what a file is from its first bytes, before any ffmpeg code touches it.

The file name is never consulted. Only a file whose bytes match one of the
allowed containers gets through, and it gets through *with* the ffmpeg demuxer
to force (``-f``), so ffprobe/ffmpeg never guess the format themselves: their
HLS, concat, SDP, image2 and similar demuxers, which open other files or the
network, can never be picked by a crafted file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from bot.audio.errors import (
    ACCEPTED_FORMATS_TEXT,
    DamagedAudioError,
    EmptyAudioFileError,
    NotAudioError,
    PlaylistNotAllowedError,
    UnsupportedAudioFormatError,
)
from bot.errors import format_seconds

HEAD_BYTES = 64 * 1024

# ffmpeg demuxer names jamgen will ever force, and ffprobe's format_name for each.
ALLOWED_DEMUXERS: dict[str, str] = {
    "mp3": "mp3",
    "wav": "wav",
    "flac": "flac",
    "ogg": "ogg",
    "aac": "aac",
    "aiff": "aiff",
    "mov": "mov,mp4,m4a,3gp,3g2,mj2",
    "matroska": "matroska,webm",
    # Raw Dolby and DTS streams (as ripped from a DVD or a film): ordinary codecs, simple demuxers.
    "ac3": "ac3",
    "eac3": "eac3",
    "dts": "dts",
}


@dataclass(frozen=True)
class Sniffed:
    """What the first bytes say.

    Args:
        demuxer: the ffmpeg demuxer to force (a key of ``ALLOWED_DEMUXERS``).
        family: jamgen's name for the container: mp3, wav, flac, ogg, aac, aiff, mp4, matroska, ac3, eac3, dts.
        extension: the file extension the bytes suggest (refined after probing: m4a vs mp4, opus vs ogg).
        big_endian: a big-endian WAV (RIFX), whose PCM ffmpeg must be told to read as big-endian.
    """

    demuxer: str
    family: str
    extension: str
    big_endian: bool = False


def _not_audio(what: str) -> NotAudioError:
    return NotAudioError(f"This file is {what}, not audio. Attach a sound file: {ACCEPTED_FORMATS_TEXT}.", what)


def _playlist(what: str) -> PlaylistNotAllowedError:
    return PlaylistNotAllowedError(
        f"This file is {what}: it only points to audio stored somewhere else, and jamgen never follows such "
        "pointers. Attach the audio file itself.",
        what,
    )


def _unsupported(what: str) -> UnsupportedAudioFormatError:
    return UnsupportedAudioFormatError(
        f"This file is {what}, which jamgen does not accept. Convert it to {ACCEPTED_FORMATS_TEXT}."
    )


# Formats recognised only to name them in the refusal.
_NOT_AUDIO_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"PK\x07\x08", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\xfd7zXZ\x00", "an XZ archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\x7fELF", "a program"),
    (b"MZ", "a Windows program"),
    (b"MThd", "a MIDI file (notes, not sound; render it to audio first)"),
)
_UNSUPPORTED_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "a WMA/WMV (ASF) file"),
    (b"caff", "a Core Audio (CAF) file"),
    (b"#!AMR", "an AMR voice recording"),
    (b".snd", "a Sun/NeXT AU file"),
    (b"FLV\x01", "a Flash video (FLV)"),
    (b"MAC ", "a Monkey's Audio (APE) file"),
    (b"wvpk", "a WavPack file"),
    (b"DSD ", "a DSD audio file"),
    (b"FRM8", "a DSD audio file"),
    (b"\x00\x00\x01\xba", "an MPEG program stream (VOB/MPG)"),
    (b"\x00\x00\x01\xb3", "an MPEG video stream"),
    (b"IMPM", "a tracker module"),
    (b"Extended Module", "a tracker module"),
    (b"TTA1", "a TTA (True Audio) file"),
    (b"tBaK", "a TAK file"),
    (b"MPCK", "a Musepack file"),
    (b"MP+", "a Musepack file"),
    (b"OFR ", "an OptimFROG file"),
    (b"ajkg", "a Shorten file"),
    (b"LA0", "a Lossless Audio (LA) file"),
    (b"riff\x2e\x91\xcf\x11", "a Sony Wave64 (W64) file"),
    (b"Creative Voice File", "a Creative Voice (VOC) file"),
    (b"NIST_1A", "a NIST SPHERE recording"),
    (b"ADIF", "a raw AAC (ADIF) file"),
    (b".ra\xfd", "a RealAudio file"),
    (b".RMF", "a RealMedia file"),
    (b"#!SILK", "a SILK voice recording"),
)
_ISO_BOX_TYPES = {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"}
_IMAGE_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis", b"jp2 ", b"crx "}

# MPEG audio (layer 1-3) tables, enough to find the length of a frame.
_MPEG_BITRATES = {
    (1, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (1, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (1, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (2, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_RATES = {1: (44100, 48000, 32000), 2: (22050, 24000, 16000), 25: (11025, 12000, 8000)}
# AC-3 frame sizes in 16-bit words per frmsizecod // 2, for 48, 44.1 and 32 kHz (ATSC A/52 table 5.18).
_AC3_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 576, 640)
_AC3_WORDS_44K = (69, 87, 104, 121, 139, 174, 208, 243, 278, 348, 417, 487, 557, 696, 835, 975, 1114, 1253, 1393)
_IFF_SOUND_TYPES = {b"8SVX", b"16SV", b"MAUD"}


def _mpeg_frame(head: bytes, offset: int) -> tuple[int, tuple[int, int, int]] | None:
    """(frame length, (version, layer, rate)) of a valid MPEG audio frame header at ``offset``."""
    if offset + 4 > len(head):
        return None
    b0, b1, b2 = head[offset], head[offset + 1], head[offset + 2]
    if b0 != 0xFF or (b1 & 0xE0) != 0xE0:
        return None
    version_bits = (b1 >> 3) & 3
    layer_bits = (b1 >> 1) & 3
    bitrate_index = b2 >> 4
    rate_index = (b2 >> 2) & 3
    if version_bits == 1 or layer_bits == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    version = {3: 1, 2: 2, 0: 25}[version_bits]
    layer = 4 - layer_bits
    bitrate = _MPEG_BITRATES[(1 if version == 1 else 2, layer)][bitrate_index] * 1000
    rate = _MPEG_RATES[version][rate_index]
    padding = (b2 >> 1) & 1
    if layer == 1:
        length = (12 * bitrate // rate + padding) * 4
    elif layer == 3 and version != 1:
        length = 72 * bitrate // rate + padding
    else:
        length = 144 * bitrate // rate + padding
    return (length, (version, layer, rate)) if length > 4 else None


def _adts_frame(head: bytes, offset: int) -> int | None:
    """Length of a valid ADTS (AAC) frame at ``offset``."""
    if offset + 7 > len(head):
        return None
    if head[offset] != 0xFF or (head[offset + 1] & 0xF6) != 0xF0:
        return None
    if (head[offset + 2] >> 2) & 0xF > 12:  # sampling frequency index
        return None
    length = ((head[offset + 3] & 0x3) << 11) | (head[offset + 4] << 3) | (head[offset + 5] >> 5)
    return length if length >= 7 else None


def _dolby_frame(head: bytes, offset: int) -> tuple[int, str] | None:
    """(frame length, "ac3" or "eac3") of a valid AC-3 or E-AC-3 sync frame at ``offset``."""
    if offset + 6 > len(head) or head[offset : offset + 2] != b"\x0b\x77":
        return None
    bsid = head[offset + 5] >> 3
    if bsid <= 10:
        fscod, frmsizecod = head[offset + 4] >> 6, head[offset + 4] & 0x3F
        if fscod == 3 or frmsizecod >= 2 * len(_AC3_KBPS):
            return None
        kbps = _AC3_KBPS[frmsizecod // 2]
        words = (kbps * 2, _AC3_WORDS_44K[frmsizecod // 2] + (frmsizecod & 1), kbps * 3)[fscod]
        return words * 2, "ac3"
    if bsid <= 16:
        words = (((head[offset + 2] & 0x07) << 8) | head[offset + 3]) + 1
        return (words * 2, "eac3") if words > 2 else None
    return None


def _dts_frame(head: bytes, offset: int) -> int | None:
    """Length of a valid DTS core frame (16-bit big-endian sync) at ``offset``."""
    if offset + 10 > len(head) or head[offset : offset + 4] != b"\x7f\xfe\x80\x01":
        return None
    length = (((head[offset + 5] & 0x03) << 12) | (head[offset + 6] << 4) | (head[offset + 7] >> 4)) + 1
    return length if length >= 96 else None


def _dolby_stream(head: bytes) -> str | None:
    """ "ac3" or "eac3" when the bytes start with two consecutive frames of that kind (or one that fills them)."""
    first = _dolby_frame(head, 0)
    if first is None:
        return None
    length, kind = first
    if length + 6 > len(head):
        return kind
    second = _dolby_frame(head, length)
    # An E-AC-3 stream may follow an AC-3 core frame with E-AC-3 extension frames: the eac3 demuxer reads both.
    if second is None:
        return None
    return "eac3" if "eac3" in (kind, second[1]) else "ac3"


def _is_dts_stream(head: bytes) -> bool:
    length = _dts_frame(head, 0)
    if length is None:
        return False
    return length + 10 > len(head) or _dts_frame(head, length) is not None


def _is_mpeg_stream(head: bytes, offset: int) -> bool:
    first = _mpeg_frame(head, offset)
    if first is None:
        return False
    length, kind = first
    if offset + length + 4 > len(head):
        return True  # a single frame fills what we read; ffprobe decides
    second = _mpeg_frame(head, offset + length)
    return second is not None and second[1] == kind


def _is_adts_stream(head: bytes, offset: int) -> bool:
    length = _adts_frame(head, offset)
    if length is None:
        return False
    if offset + length + 7 > len(head):
        return True
    return _adts_frame(head, offset + length) is not None


def _id3_size(head: bytes) -> int:
    """Bytes taken by an ID3v2 tag at the start (header, body and footer)."""
    if len(head) < 10 or head[:3] != b"ID3":
        return 0
    flags = head[5]
    size = 0
    for byte in head[6:10]:
        size = (size << 7) | (byte & 0x7F)
    return 10 + size + (10 if flags & 0x10 else 0)


def _text_kind(head: bytes) -> str | None:
    """What a text file is, if the bytes are text."""
    sample = head[:4096]
    if sample.startswith(b"\xef\xbb\xbf"):
        sample = sample[3:]
    if b"\x00" in sample:
        return None
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(sample) - 4:  # not just a character cut at the end of the sample
            return None
        text = sample[: error.start].decode("utf-8")
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    if not text or printable < 0.95 * len(text):
        return None
    stripped = text.lstrip()
    lowered = stripped.lower()
    if lowered.startswith(("#extm3u", "#extinf")) or "#ext-x-" in lowered:
        return "playlist:an HLS/M3U playlist"
    if lowered.startswith("ffconcat"):
        return "playlist:an ffmpeg concat script"
    if lowered.startswith("[playlist]"):
        return "playlist:a PLS playlist"
    if lowered.startswith("v=0"):
        return "playlist:a stream description (SDP)"
    if "<asx" in lowered[:512] or "<smil" in lowered[:512] or "<playlist" in lowered[:512]:
        return "playlist:an XML playlist"
    lines = [line.strip() for line in stripped.splitlines() if line.strip()]
    if lines and all(
        line.startswith(("#", "/", "file:", "http:", "https:", "rtmp:", "rtsp:", "udp:", "tcp:", "../", "./"))
        or line.lower().endswith((".mp3", ".wav", ".flac", ".ogg", ".m4a", ".aac", ".ts", ".m3u8"))
        for line in lines[:20]
    ):
        return "playlist:a playlist"
    if lowered.startswith(("<!doctype html", "<html")):
        return "an HTML page"
    if lowered.startswith(("{", "[")):
        return "a JSON or text file"
    return "a text file"


def check_wav_header(head: bytes, size: int) -> None:
    """Refuse a WAV whose header claims more audio than the file holds.

    Args:
        head: the first bytes of the file (at least the chunks before ``data``).
        size: the file's size in bytes.

    Raises:
        DamagedAudioError: when the ``data`` chunk claims bytes the file does not have.
    """
    if head[:4] not in (b"RIFF", b"RIFX"):
        return  # RF64/BW64 keep their sizes elsewhere; ffmpeg checks those itself
    order = ">" if head[:4] == b"RIFX" else "<"
    offset = 12
    byte_rate = 0
    while offset + 8 <= len(head):
        chunk_id = head[offset : offset + 4]
        (chunk_size,) = struct.unpack_from(f"{order}I", head, offset + 4)
        body = offset + 8
        if chunk_id == b"fmt " and body + 12 <= len(head):
            (byte_rate,) = struct.unpack_from(f"{order}I", head, body + 8)
        if chunk_id == b"data":
            # 0 and 0xFFFFFFFF mean "unknown length" (a recording streamed to disk); ffmpeg reads to the end.
            if chunk_size in (0, 0xFFFFFFFF) or body + chunk_size <= size + 1:
                return
            if byte_rate > 0:
                claimed = format_seconds(chunk_size / byte_rate, floor=True)
                held = format_seconds(max(size - body, 0) / byte_rate, floor=True)
                detail = f"its header says it holds {claimed} of audio, but the file ends after {held}"
            else:
                detail = "its header claims more audio than the file holds"
            raise DamagedAudioError(f"This WAV file is cut off or damaged: {detail}. Export it again and re-attach it.")
        offset = body + chunk_size + (chunk_size & 1)


def _sniff_known(head: bytes, size: int) -> Sniffed | None:
    """The container the bytes start with, a refusal that names a known non-audio or refused format, or None."""
    riff_kind = head[8:12] if head[:4] in (b"RIFF", b"RIFX", b"RF64", b"BW64") else b""
    if riff_kind == b"WAVE":
        check_wav_header(head, size)
        return Sniffed("wav", "wav", "wav", big_endian=head[:4] == b"RIFX")
    if riff_kind == b"AVI ":
        raise _unsupported("an AVI video")
    if riff_kind == b"WEBP":
        raise _not_audio("a WebP image")
    if riff_kind == b"RMID":
        raise _not_audio("a MIDI file (notes, not sound; render it to audio first)")
    if riff_kind:
        raise _unsupported("a RIFF file of an unknown kind")
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return Sniffed("aiff", "aiff", "aiff")
    if head[:4] == b"FORM" and head[8:12] in _IFF_SOUND_TYPES:
        raise _unsupported("an Amiga IFF sound file")
    if head[:4] == b"fLaC":
        return Sniffed("flac", "flac", "flac")
    if head[:4] == b"OggS":
        return Sniffed("ogg", "ogg", "ogg")
    if head[:4] == b"\x1a\x45\xdf\xa3":
        is_webm = b"webm" in head[:64]
        return Sniffed("matroska", "matroska", "webm" if is_webm else "mkv")
    if len(head) >= 12 and head[4:8] in _ISO_BOX_TYPES:
        brand = head[8:12] if head[4:8] == b"ftyp" else b""
        compatible = {head[i : i + 4] for i in range(16, min(len(head), 64), 4)} if brand else set()
        if brand in _IMAGE_BRANDS or (brand and compatible & _IMAGE_BRANDS and brand[:2] != b"M4"):
            raise _not_audio("an image (HEIF/AVIF)")
        extension = "mov" if brand == b"qt  " else "m4a" if brand[:2] == b"M4" else "mp4"
        return Sniffed("mov", "mp4", extension)
    if head[:3] == b"ID3":
        # Fewer than the 10 bytes of a tag header: all of it is (a piece of) a tag.
        return _sniff_after_id3(head[_id3_size(head) or len(head) :])
    if _is_adts_stream(head, 0):
        return Sniffed("aac", "aac", "aac")
    if _is_mpeg_stream(head, 0):
        return Sniffed("mp3", "mp3", "mp3")
    dolby = _dolby_stream(head)
    if dolby is not None:
        return Sniffed(dolby, dolby, dolby)
    if _is_dts_stream(head):
        return Sniffed("dts", "dts", "dts")
    if len(head) > 376 and head[0] == 0x47 and head[188] == 0x47 and head[376] == 0x47:
        raise _unsupported("an MPEG transport stream")
    for magic, what in _UNSUPPORTED_MAGIC:
        if head.startswith(magic):
            raise _unsupported(what)
    for magic, what in _NOT_AUDIO_MAGIC:
        if head.startswith(magic):
            raise _not_audio(what)
    return None


def sniff_bytes(head: bytes, size: int) -> Sniffed:
    """Decide from the first bytes whether jamgen may open the file, and with which demuxer.

    Args:
        head: the first bytes (``HEAD_BYTES`` is plenty; after an ID3 tag, the bytes that follow it).
        size: the whole file's size.

    Raises:
        EmptyAudioFileError: zero bytes.
        NotAudioError: images, archives, programs, text, unknown bytes.
        PlaylistNotAllowedError: HLS/M3U/PLS playlists, ffconcat scripts, SDP.
        UnsupportedAudioFormatError: media outside the allow-list (WMA, AVI, CAF, TTA, Musepack...), named.
        DamagedAudioError: a WAV header that claims more than the file holds.
    """
    if size == 0 or not head:
        raise EmptyAudioFileError("This file is empty (0 bytes). Attach a sound file: " + ACCEPTED_FORMATS_TEXT + ".")
    known = _sniff_known(head, size)
    if known is not None:
        return known
    text_kind = _text_kind(head)
    if text_kind is not None:
        if text_kind.startswith("playlist:"):
            raise _playlist(text_kind.removeprefix("playlist:"))
        raise _not_audio(text_kind)
    # Some MP3s start with a little junk; accept them only if real frames follow soon.
    for offset in range(1, min(len(head), 4096) - 4):
        if head[offset] == 0xFF and _is_mpeg_stream(head, offset):
            following = _mpeg_frame(head, offset)
            assert following is not None
            if offset + 2 * following[0] + 4 <= len(head) and _is_mpeg_stream(head, offset + following[0]):
                return Sniffed("mp3", "mp3", "mp3")
    raise NotAudioError(
        f"This file does not look like audio jamgen can read. Attach a sound file: {ACCEPTED_FORMATS_TEXT}."
    )


def sniff_file(path: Path, size: int) -> Sniffed:
    """Read the first bytes of ``path`` (and past a leading ID3 tag) and sniff them. Blocking; run in a thread.

    Args:
        size: its size in bytes.
    """
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
        tag = _id3_size(head)
        if tag and tag + 16 > len(head):
            # A large tag (cover art) pushed the sound past what we read: look right after the tag.
            handle.seek(tag)
            return _sniff_after_id3(handle.read(HEAD_BYTES))
    return sniff_bytes(head, size)


def _sniff_after_id3(following: bytes) -> Sniffed:
    # An ID3 tag goes in front of MP3s mostly, but also of AAC, FLAC, Musepack, TTA, APE...: the bytes after it
    # are judged like a file of their own, so a tagged Musepack file is named as Musepack, not as a broken MP3.
    if not following.strip(b"\x00"):
        raise DamagedAudioError("This file holds only tags and no sound. Export it again and re-attach it.")
    known = _sniff_known(following, len(following))
    # Padding or junk after the tag is common in MP3s, and the mp3 demuxer resyncs past it.
    return known if known is not None else Sniffed("mp3", "mp3", "mp3")
