"""Item 6 of the reliability suite: run at DEBUG, then look for Discord tokens in everything written.

While the reliability tests run, the root logger is at DEBUG with jamgen's own production handler
(``bot.logs.configure_logging``, the one ``jamgen run`` installs) writing to a file. Every fake
Discord a test starts is remembered, so the tokens it issued (the bot token and every interaction
token) can be looked for at the end in that log, in the bot processes' logs and in every file the
tests' bots wrote (data folders, databases, MP3 tags).

To cover the whole end-to-end suite (tests/cogs too), import both fixtures in ``tests/conftest.py``
in place of the plain ``fake_discord``::

    from tests.reliability.secrets_watch import debug_log_file, fake_discord  # noqa: F401

``test_secrets.py`` runs after tests/cogs and searches everything those tests wrote as well. The
log fixture is safe to register twice: the second registration reuses the first handler.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.logs import configure_logging

# A bot token of Discord's real shape (base64 user id . timestamp . HMAC), so both the literal mask
# and the shape-based mask of bot/logs.py are exercised. Not a real token.
BOT_TOKEN = (
    base64.b64encode(b"1311111111111111111").decode().rstrip("=")
    + ".GfakeA."
    + "Rl9yZWxpYWJpbGl0eV9zdWl0ZV9vbmx5X25vdF9yZWFs"[:38]
)
SCAN_CHUNK = 8 * 1024 * 1024


@dataclass
class Watch:
    """What the session saw: the DEBUG log, the fakes (and so their tokens), bot process logs."""

    log_path: Path | None = None
    fakes: list[object] = field(default_factory=list)
    process_logs: list[Path] = field(default_factory=list)
    handler: logging.Handler | None = None
    users: int = 0

    def tokens(self) -> set[str]:
        """The bot token and every interaction token the fakes issued so far."""
        found = {BOT_TOKEN}
        for fake in self.fakes:
            found.add(fake.token)  # type: ignore[attr-defined]
            found.update(i.token for i in fake.interactions.values())  # type: ignore[attr-defined]
        return found


WATCH = Watch()


@pytest.fixture(scope="session", autouse=True)
def debug_log_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The whole session at DEBUG through jamgen's production log handler, into one file."""
    if WATCH.handler is not None and WATCH.log_path is not None:
        WATCH.users += 1
        yield WATCH.log_path
        WATCH.users -= 1
        return
    path = tmp_path_factory.mktemp("debug-log") / "jamgen-debug.log"
    stream = path.open("w", encoding="utf-8")
    root = logging.getLogger()
    previous = root.level
    WATCH.handler = configure_logging("DEBUG", secrets=[BOT_TOKEN], stream=stream)
    # numba dumps every function librosa compiles at DEBUG (megabytes, seconds) and holds no secrets.
    numba = logging.getLogger("numba")
    numba_level = numba.level
    numba.setLevel(logging.INFO)
    WATCH.log_path = path
    WATCH.users = 1
    try:
        yield path
    finally:
        root.removeHandler(WATCH.handler)
        root.setLevel(previous)
        numba.setLevel(numba_level)
        WATCH.handler = None
        stream.close()


@pytest.fixture
async def fake_discord(fake_discord_options: dict[str, Any]) -> AsyncIterator[Any]:
    """A started fake Discord (as tests/fakediscord/fixtures.py), remembered so its tokens can be looked for."""
    from tests.fakediscord import FakeDiscord
    from tests.fakediscord.fixtures import check_conformance

    async with FakeDiscord(**fake_discord_options) as fake:
        WATCH.fakes.append(fake)
        yield fake
    check_conformance(fake)


def token_hits(paths: Iterable[Path], tokens: set[str]) -> list[tuple[Path, str]]:
    """(file, token) for every token found in any of the files (read in chunks, binary files too).

    Args:
        paths: files and folders (searched recursively).
        tokens: the secrets.
    """
    needles = [t.encode() for t in tokens if t]
    pattern = re.compile(b"|".join(re.escape(n) for n in sorted(needles, key=len, reverse=True)))
    overlap = max(len(n) for n in needles)
    hits: list[tuple[Path, str]] = []
    for path in _files(paths):
        tail = b""
        try:
            with path.open("rb") as handle:
                while chunk := handle.read(SCAN_CHUNK):
                    window = tail + chunk
                    for match in pattern.finditer(window):
                        hits.append((path, match.group().decode()))
                    tail = window[-overlap:]
        except OSError:
            continue
    return hits


def _files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from (p for p in path.rglob("*") if p.is_file() and not p.is_symlink())
        elif path.is_file():
            yield path
