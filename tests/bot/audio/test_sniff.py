"""Format detection from bytes alone."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.audio import (
    AudioInputError,
    DamagedAudioError,
    EmptyAudioFileError,
    NotAudioError,
    PlaylistNotAllowedError,
    UnsupportedAudioFormatError,
)
from bot.audio.sniff import ALLOWED_DEMUXERS, sniff_bytes, sniff_file

from .conftest import VALID_FORMATS


def _sniff(head: bytes):
    return sniff_bytes(head, len(head))


@pytest.mark.parametrize("name", sorted(VALID_FORMATS))
def test_every_corpus_format_is_recognised_from_its_bytes(corpus, name):
    sniffed = sniff_file(corpus.valid[name], corpus.valid[name].stat().st_size)
    assert sniffed.demuxer in ALLOWED_DEMUXERS


@pytest.mark.parametrize(
    ("head", "error", "words"),
    [
        (b"", EmptyAudioFileError, "empty"),
        (b"\x89PNG\r\n\x1a\n" + bytes(40), NotAudioError, "PNG image"),
        (b"\xff\xd8\xff\xe0" + bytes(40), NotAudioError, "JPEG image"),
        (b"PK\x03\x04" + bytes(40), NotAudioError, "ZIP archive"),
        (b"%PDF-1.7\n" + bytes(40), NotAudioError, "PDF document"),
        (b"\x7fELF\x02\x01" + bytes(40), NotAudioError, "a program"),
        (b"MThd\x00\x00\x00\x06", NotAudioError, "MIDI"),
        (b"RIFF\x10\x00\x00\x00AVI LIST", UnsupportedAudioFormatError, "AVI"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", NotAudioError, "WebP"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", NotAudioError, "HEIF"),
        (b"caff\x00\x01" + bytes(40), UnsupportedAudioFormatError, "CAF"),
        (b"#EXTM3U\n#EXTINF:1,\nhttp://example.com/a.mp3\n", PlaylistNotAllowedError, "HLS/M3U"),
        (b"#EXTINF:1,\n/etc/passwd\n", PlaylistNotAllowedError, "HLS/M3U"),
        (b"ffconcat version 1.0\nfile a.wav\n", PlaylistNotAllowedError, "concat"),
        (b"[playlist]\nFile1=http://x/a.mp3\n", PlaylistNotAllowedError, "PLS"),
        (b"v=0\r\no=- 0 0 IN IP4 1.2.3.4\r\n", PlaylistNotAllowedError, "SDP"),
        (b"/home/someone/song.mp3\nhttp://x/y.mp3\n", PlaylistNotAllowedError, "playlist"),
        (b"<!DOCTYPE html><html></html>", NotAudioError, "HTML"),
        (b"just some words\n", NotAudioError, "text file"),
        (b"ID3\x03\x00\x00\x00\x00\x00\x05" + bytes(5), DamagedAudioError, "only tags"),
    ],
)
def test_non_audio_is_named_in_the_refusal(head, error, words):
    with pytest.raises(error) as caught:
        _sniff(head)
    assert type(caught.value) is error
    assert words in str(caught.value)


def test_a_lying_wav_header_is_caught_before_ffmpeg(corpus):
    head = corpus.files["lying.wav"].read_bytes()
    with pytest.raises(DamagedAudioError, match="header says it holds 10 s"):
        _sniff(head)
    # The streaming sentinel (unknown length) is not a lie.
    streamed = bytearray(head)
    at = streamed.find(b"data")
    streamed[at + 4 : at + 8] = b"\xff\xff\xff\xff"
    assert _sniff(bytes(streamed)).demuxer == "wav"


def test_mp3_behind_a_large_id3_tag_and_a_little_junk(corpus):
    frames = corpus.valid["mp3"].read_bytes()
    tag_body = 100_000
    size = bytes((tag_body >> shift) & 0x7F for shift in (21, 14, 7, 0))
    tagged = b"ID3\x03\x00\x00" + size + bytes(tag_body) + frames
    path = corpus.root / "big-tag.bin"
    path.write_bytes(tagged)
    assert sniff_file(path, len(tagged)).demuxer == "mp3"
    start = frames.find(b"\xff\xfb")
    assert _sniff(b"junk!" + frames[start:]).demuxer == "mp3"


def test_random_bytes_are_not_audio():
    import random

    noise = random.Random(5).randbytes(8192)
    with pytest.raises(NotAudioError, match="does not look like audio"):
        _sniff(noise)


@settings(max_examples=300, deadline=None)
@given(
    prefix=st.sampled_from([b"", b"RIFF", b"RIFF\x00\x00\x00\x00WAVE", b"ID3", b"\xff\xfb", b"\xff\xf1", b"OggS"]),
    body=st.binary(max_size=600),
)
def test_any_bytes_are_either_sniffed_or_refused_politely(prefix, body):
    head = prefix + body
    outcome: object
    try:
        outcome = _sniff(head)
    except AudioInputError as error:  # any other exception fails the test
        outcome = error
    if isinstance(outcome, AudioInputError):
        assert str(outcome).endswith(".")
    else:
        assert outcome.demuxer in ALLOWED_DEMUXERS
