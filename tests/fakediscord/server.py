"""FakeDiscord: the loopback server's wiring, lifecycle and state; its API comes from the mixins below.

| mixin | module | what |
|---|---|---|
| ``WorldBuilding`` | world.py | users, guilds, members, CDN files; lookups |
| ``Inspection`` | inspection.py | notify/wait, read back messages, requests and errors |
| ``Payloads`` | payloads.py | message and interaction JSON |
| ``MessageStore`` | messages.py | create/edit/delete/react, with gateway events |
| ``CommandRegistry`` | command_registry.py | registered application commands, visibility |
| ``CommandInjection`` | inject_commands.py | slash, autocomplete, context-menu commands |
| ``InteractionInjection`` | inject_interactions.py | sending interactions, clicks, selects, modals |
| ``MemberActions`` | inject_members.py | member posts and reactions, thread state |
| ``HttpPlumbing`` | middleware.py | recording, faults, error answers, authorization |
| ``PollActions`` | polls.py | polls on messages, votes, expiry and finalizing |

The REST routes are in rest.py (and rest_*.py), the gateway in gateway.py.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.fakediscord.command_registry import CommandHiddenError, CommandRegistry
from tests.fakediscord.dms import DirectMessages
from tests.fakediscord.faults import Faults
from tests.fakediscord.gateway import Gateway
from tests.fakediscord.inject_commands import CommandInjection
from tests.fakediscord.inject_interactions import InteractionInjection
from tests.fakediscord.inject_members import MemberActions
from tests.fakediscord.inspection import Inspection
from tests.fakediscord.messages import CHAT_INPUT_COMMAND, CONTEXT_MENU_COMMAND, DEFAULT_MESSAGE, REPLY, MessageStore
from tests.fakediscord.middleware import HttpPlumbing
from tests.fakediscord.model import (
    INTENT_GUILD_MEMBERS,
    INTENT_GUILDS,
    PRIVILEGED_INTENTS,
    FakeAttachment,
    FakeClock,
    FakeGuild,
    FakeLimits,
    FakeUser,
    SnowflakeFactory,
)
from tests.fakediscord.payloads import Payloads
from tests.fakediscord.polls import FakePoll, PollActions
from tests.fakediscord.ratelimits import RateLimiter
from tests.fakediscord.records import ErrorRecord, FakeInteraction, FakeMessage, RequestRecord
from tests.fakediscord.responses import API_PREFIX, DISCORD_CODE, DISCORD_MESSAGE, INTERACTION_ID, json_response
from tests.fakediscord.rest import add_routes
from tests.fakediscord.voice_world import FakeVoice
from tests.fakediscord.world import WorldBuilding

# Names other modules import from here (they are defined in the modules above).
__all__ = [
    "API_PREFIX",
    "CHAT_INPUT_COMMAND",
    "CONTEXT_MENU_COMMAND",
    "DEFAULT_MESSAGE",
    "DISCORD_CODE",
    "DISCORD_MESSAGE",
    "INTERACTION_ID",
    "REPLY",
    "CommandHiddenError",
    "FakeDiscord",
    "json_response",
]


class FakeDiscord(
    PollActions,  # first: its advance() also finalizes expired polls
    WorldBuilding,
    Inspection,
    Payloads,
    MessageStore,
    CommandRegistry,
    CommandInjection,
    InteractionInjection,
    MemberActions,
    HttpPlumbing,
):
    """A loopback Discord (API v10 subset, gateway, CDN) for discord.py bots under test.

    Use as ``async with FakeDiscord() as fake:``; the defaults give one guild (``fake.guild``)
    with text channels ``general`` and ``music`` (``fake.channel`` is ``general``), an admin member
    ``alice`` (``fake.admin``, Admin role with ADMINISTRATOR, guild owner) and an ordinary member
    ``bob`` (``fake.member``), plus the bot's own member.

    Args:
        limits: Discord's limits as enforced here.
        token: the bot token the fake accepts.
        bot_name: the bot user's name.
        populate: create the default guild, channels, roles and members.
        allowed_privileged_intents: privileged intent bits the "developer portal" allows.
    """

    def __init__(
        self,
        *,
        limits: FakeLimits | None = None,
        token: str = "fake-token.for-tests.only",
        bot_name: str = "JamBot",
        populate: bool = True,
        allowed_privileged_intents: int = PRIVILEGED_INTENTS,
    ) -> None:
        self.limits = limits or FakeLimits()
        self.token = token
        self.allowed_privileged_intents = allowed_privileged_intents
        self.clock = FakeClock()
        self.ids = SnowflakeFactory()
        self.application_id = self.ids.next()
        self.bot_user = FakeUser(id=self.application_id, username=bot_name, bot=True)
        self.users: dict[int, FakeUser] = {self.bot_user.id: self.bot_user}
        self.guilds: dict[int, FakeGuild] = {}
        self.messages: dict[int, FakeMessage] = {}
        self.polls: dict[int, FakePoll] = {}
        self.interactions: dict[int, FakeInteraction] = {}
        self.cdn: dict[int, FakeAttachment] = {}
        self.global_commands: dict[int, dict[str, Any]] = {}
        self.guild_commands: dict[int, dict[int, dict[str, Any]]] = {}
        self.requests: list[RequestRecord] = []
        self.errors: list[ErrorRecord] = []
        # Exceptions raised inside the fake's handlers (bugs of the fake or of a test's setup).
        self.internal_errors: list[Exception] = []
        self.faults = Faults()
        self.rate_limiter = RateLimiter(self)
        self.dms = DirectMessages(self)
        self.gateway = Gateway(self)
        # Voice states, voice servers (started on the first join) and what they heard: voice_world.py.
        self.voice = FakeVoice(self)
        self.started_at = time.monotonic()
        self._by_token: dict[str, FakeInteraction] = {}
        self._changed = asyncio.Event()
        self._inflight = 0
        self._last_activity = time.monotonic()
        self._background: set[asyncio.Task[Any]] = set()
        self._fail_checks: list[Callable[[], BaseException | None]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.app_owner: FakeUser | None = None
        if populate:
            self._populate()

    # ---- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a free port."""
        # The rate limiter runs inside _middleware, so its 429s are recorded like any answer.
        app = web.Application(middlewares=[self._middleware, self.rate_limiter.middleware], client_max_size=1024**3)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/gateway-resume", self.gateway.handle)
        add_routes(app, self)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        """Close sockets and stop listening."""
        await self.gateway.close_all()
        await self.voice.stop()
        for task in list(self._background):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        """What ``discord.http.Route.BASE`` must be."""
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """What ``DiscordWebSocket.DEFAULT_GATEWAY`` must be."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def resume_gateway_url(self) -> str:
        """The resume URL sent in READY (a different path, so tests can see where the client went)."""
        return f"ws://127.0.0.1:{self.port}/gateway-resume"

    # ---- gateway helpers -------------------------------------------------------------------------

    def ready_payload(self, session_id: str) -> dict[str, Any]:
        """READY for a new session.

        Args:
            session_id: the session's id.
        """
        return {
            "v": 10,
            "user": {**self.bot_user.payload(), "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": str(guild_id), "unavailable": True} for guild_id in self.guilds],
            "session_id": session_id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_gateway_url,
            "shard": [0, 1],
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": [],
            "_trace": ["fake-gateway"],
        }

    def _guild_changed(self, event: str, payload: dict[str, Any]) -> None:
        intent = INTENT_GUILD_MEMBERS if event.startswith("GUILD_MEMBER") else INTENT_GUILDS
        if self.gateway.session_id is not None and self.gateway.wants(intent):
            self._spawn(self.gateway.dispatch(event, payload))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drop_gateway(self, code: int = 4000, *, resumable: bool = True) -> None:
        """Close the bot's gateway socket; with 4000 discord.py comes back with RESUME.

        Args:
            code: the close code.
            resumable: False refuses the RESUME with INVALID_SESSION(false), forcing a new IDENTIFY.
        """
        await self.gateway.drop(code, resumable=resumable)

    async def invalidate_session(self, *, resumable: bool = False) -> None:
        """Send INVALID_SESSION; ``resumable=False`` makes discord.py IDENTIFY again.

        Args:
            resumable: the ``d`` of op 9.
        """
        await self.gateway.invalidate_session(resumable=resumable)

    async def request_reconnect(self) -> None:
        """Send RECONNECT (op 7); discord.py reconnects and RESUMEs."""
        await self.gateway.request_reconnect()
