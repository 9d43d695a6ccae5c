"""One logger tree for jamgen, with secrets masked at every level.

A :class:`RedactingFilter` sits on the root handler, so whatever library logs a
record (discord.py at DEBUG included) the bot token and interaction/webhook
tokens are masked before the line is written.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import TextIO

MASK = "[redacted]"

# /webhooks/<app id>/<token> and /interactions/<id>/<token>: the id stays for debugging.
_URL_TOKEN = re.compile(r"(/(?:webhooks|interactions)/\d+/)([A-Za-z0-9_.\-]{8,})")
# JSON or repr of a payload: "token": "…" / 'token': '…'
_FIELD_TOKEN = re.compile(r"""(["']token["']\s*:\s*["'])([^"']+)(["'])""")
# Authorization: Bot <token>
_AUTH_HEADER = re.compile(r"((?:Bot|Bearer)\s+)([A-Za-z0-9_.\-]{20,})")
# The shape of a Discord bot token: base64 user id . timestamp . hmac
_BOT_TOKEN = re.compile(r"\b[A-Za-z0-9_\-]{23,28}\.[A-Za-z0-9_\-]{6,7}\.[A-Za-z0-9_\-]{27,40}\b")


class RedactingFilter(logging.Filter):
    """Mask secrets in a record's message, exception and stack text.

    Args:
        secrets: literal strings that must never be written (the bot token).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def redact(self, text: str) -> str:
        """Return ``text`` with every known secret and token shape masked."""
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        text = _URL_TOKEN.sub(rf"\g<1>{MASK}", text)
        text = _FIELD_TOKEN.sub(rf"\g<1>{MASK}\g<3>", text)
        text = _AUTH_HEADER.sub(rf"\g<1>{MASK}", text)
        return _BOT_TOKEN.sub(MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class _JamgenHandler(logging.StreamHandler[TextIO]):
    """The handler :func:`configure_logging` installs; a later call replaces it."""

    _jamgen = True


def configure_logging(
    level: str = "INFO", secrets: Iterable[str] = (), stream: TextIO | None = None
) -> logging.Handler:
    """Set up the root logger: one line per event, secrets masked.

    Args:
        level: name of the level for jamgen's and libraries' loggers.
        secrets: literal strings to mask (the bot token).
        stream: where lines go (default stderr).

    Returns:
        the installed handler, so tests can remove it.
    """
    handler = _JamgenHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_jamgen", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # numba dumps bytecode at DEBUG (megabytes per start): never useful to an admin.
    logging.getLogger("numba").setLevel(max(logging.INFO, logging.getLevelName(level)))
    return handler
