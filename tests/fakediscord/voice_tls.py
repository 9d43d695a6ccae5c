"""TLS for the fake voice server: discord.py always opens ``wss://{endpoint}/?v=8``.

A throwaway self-signed certificate for 127.0.0.1 is made once per process with the ``openssl``
CLI, in a temporary folder. The client trusts it only while a fake voice server runs: aiohttp
looks up ``aiohttp.connector._SSL_CONTEXT_VERIFIED`` for every verified TLS connection, so the
fake swaps in a context that trusts the system CAs plus this certificate, and puts the original
back when it stops. Production code and discord.py are not touched.
"""

from __future__ import annotations

import atexit
import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path

import aiohttp.connector

_material: list[tuple[Path, Path]] = []
_saved: list[ssl.SSLContext] = []


def certificate() -> tuple[Path, Path]:
    """(certificate, key) PEM files for 127.0.0.1, made on first use."""
    if not _material:
        folder = Path(tempfile.mkdtemp(prefix="fake-voice-tls-"))
        atexit.register(shutil.rmtree, folder, True)
        cert, key = folder / "cert.pem", folder / "key.pem"
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", str(key), "-out", str(cert),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )  # fmt: skip
        _material.append((cert, key))
    return _material[0]


def server_context() -> ssl.SSLContext:
    """The voice server's TLS context."""
    cert, key = certificate()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def trust_fake_voice() -> None:
    """Make aiohttp's verified TLS context also trust the fake's certificate (undo with :func:`untrust`)."""
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=str(certificate()[0]))
    _saved.append(aiohttp.connector._SSL_CONTEXT_VERIFIED)
    aiohttp.connector._SSL_CONTEXT_VERIFIED = context


def untrust() -> None:
    """Put back the context :func:`trust_fake_voice` replaced."""
    if _saved:
        aiohttp.connector._SSL_CONTEXT_VERIFIED = _saved.pop()
