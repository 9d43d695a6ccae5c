"""FakeDiscord: the loopback server, its state, and the test-facing API (inject, wait, read back)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import fnmatch
import json
import re
import secrets
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import discord
from aiohttp import web
from aiohttp.base_protocol import BaseProtocol
from aiohttp.streams import StreamReader

from tests.fakediscord.content_intent import gate as gate_content
from tests.fakediscord.dms import DirectMessages
from tests.fakediscord.faults import FaultRule, Faults
from tests.fakediscord.gateway import Gateway
from tests.fakediscord.limits import check_attachment_count, check_upload, upload_limit
from tests.fakediscord.model import (
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    BOT_PERMISSIONS,
    INTENT_GUILD_MEMBERS,
    INTENT_GUILD_MESSAGE_REACTIONS,
    INTENT_GUILD_MESSAGES,
    INTENT_GUILDS,
    PRIVILEGED_INTENTS,
    FakeAttachment,
    FakeChannel,
    FakeClock,
    FakeGuild,
    FakeLimits,
    FakeMember,
    FakeRole,
    FakeUser,
    SnowflakeFactory,
    guess_content_type,
    iso,
)
from tests.fakediscord.permissions import (
    USE_APPLICATION_COMMANDS,
    VIEW_CHANNEL,
    channel_permissions,
    send_permission,
)
from tests.fakediscord.ratelimits import Bucket, RateLimiter, rate_limited
from tests.fakediscord.records import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    EPHEMERAL,
    HAS_THREAD,
    LOADING,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    ErrorRecord,
    FakeInteraction,
    FakeMessage,
    MessageSource,
    RequestRecord,
    answered_components,
    answered_embeds,
)
from tests.fakediscord.rules import SELECT_TYPES, DiscordError
from tests.fakediscord.threads import ArchivedThreadError
from tests.fakediscord.threads import before_post as before_thread_post
from tests.fakediscord.threads import set_archived as set_thread_archived

API_PREFIX = "/api/v10"
# Per-request/response storage: which interaction a request concerns, and the Discord error it got.
INTERACTION_ID = web.RequestKey("interaction_id", int)
DISCORD_CODE = web.ResponseKey("discord_code", object)
DISCORD_MESSAGE = web.ResponseKey("discord_message", str)
USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")

# Option types of application commands.
OPTION_SUB_COMMAND = 1
OPTION_SUB_COMMAND_GROUP = 2
OPTION_STRING = 3
OPTION_INTEGER = 4
OPTION_BOOLEAN = 5
OPTION_USER = 6
OPTION_CHANNEL = 7
OPTION_ROLE = 8
OPTION_MENTIONABLE = 9
OPTION_NUMBER = 10
OPTION_ATTACHMENT = 11

# Message types.
DEFAULT_MESSAGE = 0
REPLY = 19
CHAT_INPUT_COMMAND = 20
CONTEXT_MENU_COMMAND = 23


class CommandHiddenError(PermissionError):
    """Discord would not offer this command to this member (default_member_permissions)."""


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON answer with ``Content-Type: application/json`` exactly (discord.py needs that).

    Args:
        body: JSON-able body.
        status: HTTP status.
        headers: extra headers.
    """
    response = web.Response(
        body=json.dumps(body).encode(), status=status, headers={"Content-Type": "application/json", **(headers or {})}
    )
    if isinstance(body, dict) and status >= 400:
        response[DISCORD_CODE] = body.get("code")
        response[DISCORD_MESSAGE] = str(body.get("message", ""))
    return response


def _emoji_payload(key: str) -> dict[str, Any]:
    name, _, emoji_id = key.partition(":")
    if emoji_id.isdigit():
        return {"id": emoji_id, "name": name, "animated": False}
    return {"id": None, "name": key}


class FakeDiscord:
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
        from tests.fakediscord.rest import add_routes

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

    # ---- the world -----------------------------------------------------------------------------

    def _populate(self) -> None:
        guild = self.add_guild("Jam Session")
        guild.add_text_channel("general", topic="talk")
        guild.add_text_channel("music", topic="jams")
        admin = self.add_member("alice", guild=guild, admin=True)
        guild.owner_id = admin.id
        self.add_member("bob", guild=guild)
        self.app_owner = admin.user

    def add_user(self, username: str, *, bot: bool = False) -> FakeUser:
        """Create a user (not yet a member anywhere).

        Args:
            username: the user's name.
            bot: whether it is a bot account.
        """
        user = FakeUser(id=self.ids.next(), username=username, bot=bot, global_name=username.title())
        self.users[user.id] = user
        return user

    def add_guild(self, name: str) -> FakeGuild:
        """Create a guild with the bot in it (its own managed role included).

        Args:
            name: the guild's name.
        """
        guild = FakeGuild(self.ids.next(), name, ids=self.ids, clock=self.clock)
        bot_role = guild.add_role(self.bot_user.username, BOT_PERMISSIONS, managed=True)
        guild.add_member(self.bot_user, roles=[bot_role])
        guild.on_change = self._guild_changed
        self.guilds[guild.id] = guild
        self._guild_changed("GUILD_CREATE", guild.payload())
        return guild

    def add_member(
        self,
        username: str,
        *,
        guild: FakeGuild | None = None,
        admin: bool = False,
        permissions: int | discord.Permissions | None = None,
        roles: Sequence[FakeRole] = (),
    ) -> FakeMember:
        """Create a user and make it a member.

        Args:
            username: the user's name.
            guild: the guild; the default guild when None.
            admin: give it the guild's "Admin" role (ADMINISTRATOR), created on first use.
            permissions: give it a personal role with these permission bits.
            roles: further roles.
        """
        guild = guild or self.guild
        member_roles = list(roles)
        if admin:
            admin_role = next((r for r in guild.roles.values() if r.name == "Admin"), None)
            member_roles.append(admin_role or guild.add_role("Admin", ADMINISTRATOR))
        if permissions is not None:
            member_roles.append(guild.add_role(f"{username}-role", permissions))
        return guild.add_member(self.add_user(username), roles=member_roles)

    @property
    def guild(self) -> FakeGuild:
        """The first guild."""
        return next(iter(self.guilds.values()))

    @property
    def channel(self) -> FakeChannel:
        """The first text channel of the first guild (``general`` by default)."""
        return self.guild.text_channels()[0]

    @property
    def admin(self) -> FakeMember:
        """The default admin member (``alice``)."""
        return self.guild.member_named("alice")

    @property
    def member(self) -> FakeMember:
        """The default ordinary member (``bob``)."""
        return self.guild.member_named("bob")

    @property
    def bot_member(self) -> FakeMember:
        """The bot's member in the first guild."""
        return self.guild.members[self.bot_user.id]

    def find_channel(self, channel_id: int) -> FakeChannel | None:
        """A channel or thread of any guild.

        Args:
            channel_id: its id.
        """
        for guild in self.guilds.values():
            channel = guild.channels.get(channel_id)
            if channel is not None:
                return channel
        return None

    def guild_of(self, channel: FakeChannel) -> FakeGuild:
        """The guild a channel belongs to.

        Args:
            channel: the channel.
        """
        return self.guilds[channel.guild_id]

    def attachment(
        self,
        filename: str,
        data: bytes,
        *,
        content_type: str | None = None,
        size: int | None = None,
        channel: FakeChannel | None = None,
        description: str | None = None,
        duration_secs: float | None = None,
    ) -> FakeAttachment:
        """Register bytes on the fake CDN; pass the result as a slash option or a message attachment.

        Args:
            filename: the file name shown to the bot.
            data: the bytes the CDN serves.
            content_type: MIME type; guessed from the name when None.
            size: the size Discord reports; ``len(data)`` when None (set it larger to fake a huge file).
            channel: the channel in the CDN path; the default channel when None.
            description: alt text.
            duration_secs: set for voice messages.
        """
        return self._register_cdn(
            filename,
            data,
            channel_id=(channel or self.channel).id,
            content_type=content_type,
            size=size,
            description=description,
            duration_secs=duration_secs,
        )

    def _register_cdn(
        self,
        filename: str,
        data: bytes,
        *,
        channel_id: int,
        content_type: str | None = None,
        size: int | None = None,
        description: str | None = None,
        ephemeral: bool = False,
        duration_secs: float | None = None,
    ) -> FakeAttachment:
        attachment_id = self.ids.next()
        url = f"{self.base_url}/cdn/attachments/{channel_id}/{attachment_id}/{quote(filename)}"
        attachment = FakeAttachment(
            id=attachment_id,
            filename=filename,
            data=data,
            content_type=content_type or guess_content_type(filename),
            url=url,
            size=len(data) if size is None else size,
            description=description,
            ephemeral=ephemeral,
            duration_secs=duration_secs,
        )
        self.cdn[attachment_id] = attachment
        return attachment

    def advance(self, seconds: float) -> None:
        """Move the fake clock forward (interaction tokens expire after 15 fake minutes).

        Args:
            seconds: how far.
        """
        self.clock.advance(seconds)
        self.notify()

    # ---- change notification and waiting -------------------------------------------------------

    def notify(self) -> None:
        """Wake every waiter (the server calls this on each change)."""
        self._last_activity = time.monotonic()
        self._changed.set()
        self._changed = asyncio.Event()

    def add_failure_check(self, check: Callable[[], BaseException | None]) -> None:
        """Make waits fail fast: ``check()`` returning an exception ends every wait with it.

        Args:
            check: e.g. "the bot's task died with X".
        """
        self._fail_checks.append(check)

    def remove_failure_check(self, check: Callable[[], BaseException | None]) -> None:
        """Undo :meth:`add_failure_check`.

        Args:
            check: the same callable.
        """
        if check in self._fail_checks:
            self._fail_checks.remove(check)

    async def wait_for(self, predicate: Callable[[], Any], *, timeout: float = 5.0, what: str = "condition") -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every change) and return its value.

        Args:
            predicate: a cheap check of the fake's state.
            timeout: seconds before TimeoutError.
            what: shown in the TimeoutError.
        """
        deadline = time.monotonic() + timeout
        while True:
            if self.internal_errors:
                raise RuntimeError(f"while waiting for {what}: the fake Discord failed") from self.internal_errors[0]
            for check in self._fail_checks:
                failure = check()
                if failure is not None:
                    raise RuntimeError(f"while waiting for {what}: the bot failed") from failure
            changed = self._changed
            value = predicate()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}\n{self.describe_recent()}")
            # Predicates may also read the bot's own state, which does not notify: poll as well.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, 0.05))

    def describe_recent(self, count: int = 12) -> str:
        """The last requests and errors, for failure messages.

        Args:
            count: how many of each.
        """
        lines = ["recent requests:"]
        lines += [
            f"  {r.method} {r.path} -> {r.status}{f' ({r.fault})' if r.fault else ''}" for r in self.requests[-count:]
        ]
        lines.append("recent 4xx:")
        lines += [f"  {e.method} {e.path} -> {e.status} {e.code} {e.message}" for e in self.errors[-count:]]
        return "\n".join(lines)

    def bot_messages(
        self, channel: FakeChannel | int | None = None, *, include_deleted: bool = False
    ) -> list[FakeMessage]:
        """Messages the bot sent (channel messages, interaction responses, followups), oldest first.

        Args:
            channel: only this channel (or thread).
            include_deleted: also deleted ones.
        """
        channel_id = channel.id if isinstance(channel, FakeChannel) else channel
        return [
            message
            for message in self.messages.values()
            if message.author.id == self.bot_user.id
            and (include_deleted or not message.deleted)
            and (channel_id is None or message.channel_id == channel_id)
        ]

    async def wait_for_message(
        self,
        predicate: Callable[[FakeMessage], Any] | None = None,
        *,
        channel: FakeChannel | int | None = None,
        timeout: float = 5.0,
        include_ephemeral: bool = True,
    ) -> FakeMessage:
        """The oldest bot message matching ``predicate`` (waiting for one); "thinking…" placeholders are skipped.

        Args:
            predicate: condition on the message; any when None.
            channel: only this channel (or thread).
            timeout: seconds before TimeoutError.
            include_ephemeral: also ephemeral messages.
        """

        def found() -> FakeMessage | None:
            for message in self.bot_messages(channel):
                if message.loading or (message.ephemeral and not include_ephemeral):
                    continue
                if predicate is None or predicate(message):
                    return message
            return None

        return await self.wait_for(found, timeout=timeout, what="a bot message")

    async def wait_idle(self, quiet: float = 0.05, timeout: float = 2.0) -> bool:
        """Wait until no request is in flight and nothing changed for ``quiet`` seconds.

        Args:
            quiet: seconds of silence.
            timeout: give up after this long (returns False).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._inflight == 0 and time.monotonic() - self._last_activity >= quiet:
                return True
            await asyncio.sleep(quiet / 2)
        return False

    async def wait_until_ready(self, timeout: float = 5.0) -> None:
        """Wait until the bot has a live gateway session.

        Args:
            timeout: seconds before TimeoutError.
        """
        await self.gateway.wait_ready(timeout)

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

    # ---- payloads ------------------------------------------------------------------------------

    def user_for(self, user_id: int) -> FakeUser | None:
        """A known user.

        Args:
            user_id: its id.
        """
        return self.users.get(user_id)

    def message_payload(
        self, message: FakeMessage, *, gateway: bool = False, with_reference: bool = True
    ) -> dict[str, Any]:
        """A message object as the API returns it.

        Args:
            message: the message.
            gateway: add ``member`` fields as gateway events do.
            with_reference: add ``referenced_message`` for replies.
        """
        guild = self.guilds.get(message.guild_id) if message.guild_id else None
        mentions = []
        for user_id in message.mention_ids:
            user = self.users.get(user_id)
            if user is None:
                continue
            entry = user.payload()
            if gateway and guild is not None and user_id in guild.members:
                entry["member"] = guild.members[user_id].payload(with_user=False)
            mentions.append(entry)
        body: dict[str, Any] = {
            "id": str(message.id),
            "type": message.type,
            "channel_id": str(message.channel_id),
            "content": message.content,
            "author": message.author.payload(),
            "timestamp": message.timestamp,
            "edited_timestamp": message.edited_timestamp,
            "tts": message.tts,
            "mention_everyone": message.mention_everyone,
            "mentions": mentions,
            "mention_roles": [str(role_id) for role_id in message.mention_role_ids],
            "mention_channels": [],
            "attachments": [attachment.payload() for attachment in message.attachments],
            "embeds": answered_embeds(message.embeds),
            "components": answered_components(message.components),
            "pinned": message.pinned,
            "flags": message.flags,
        }
        if guild is not None:
            body["guild_id"] = str(guild.id)
            if gateway and message.webhook_id is None and message.author.id in guild.members:
                body["member"] = guild.members[message.author.id].payload(with_user=False)
        if message.reactions:
            body["reactions"] = [
                {
                    "emoji": _emoji_payload(key),
                    "count": len(users),
                    "count_details": {"burst": 0, "normal": len(users)},
                    "me": self.bot_user.id in users,
                    "me_burst": False,
                    "burst_colors": [],
                }
                for key, users in message.reactions.items()
                if users
            ]
        if message.webhook_id is not None:
            body["webhook_id"] = str(message.webhook_id)
            body["application_id"] = str(self.application_id)
        if message.interaction_id is not None:
            interaction = self.interactions.get(message.interaction_id)
            if interaction is not None:
                body["interaction_metadata"] = interaction.metadata_payload()
        if message.reference is not None:
            body["message_reference"] = copy.deepcopy(message.reference)
            if with_reference:
                referenced = self.messages.get(int(message.reference["message_id"]))
                body["referenced_message"] = (
                    self.message_payload(referenced, with_reference=False)
                    if referenced is not None and not referenced.deleted
                    else None
                )
        if message.thread_id is not None:
            thread = self.find_channel(message.thread_id)
            if thread is not None:
                body["thread"] = thread.payload()
        return body

    def bot_view(self, message: FakeMessage, *, gateway: bool = False) -> dict[str, Any]:
        """A message as the bot receives it: blanked by the MESSAGE_CONTENT rules (see content_intent).

        Args:
            message: the message.
            gateway: add ``member`` fields as gateway events do.
        """
        return gate_content(self, self.message_payload(message, gateway=gateway))

    def _channel_payload_for(self, channel: FakeChannel, member: FakeMember) -> dict[str, Any]:
        body = channel.payload()
        body["permissions"] = str(channel_permissions(self.guild_of(channel), member, channel))
        return body

    def interaction_payload(
        self,
        interaction: FakeInteraction,
        member: FakeMember,
        channel: FakeChannel,
        *,
        message: FakeMessage | None = None,
        locale: str = "en-US",
    ) -> dict[str, Any]:
        """INTERACTION_CREATE's payload.

        Args:
            interaction: the record.
            member: who triggered it.
            channel: where.
            message: the message of a component or a modal opened from one.
            locale: the user's client locale.
        """
        guild = self.guild_of(channel)
        bot_member = guild.members[self.bot_user.id]
        member_bits = channel_permissions(guild, member, channel)
        body: dict[str, Any] = {
            "id": str(interaction.id),
            "application_id": str(self.application_id),
            "type": interaction.type,
            "token": interaction.token,
            "version": 1,
            "attachment_size_limit": interaction.attachment_size_limit,
            "guild_id": str(guild.id),
            "guild": {"id": str(guild.id), "locale": guild.locale, "features": []},
            "guild_locale": guild.locale,
            "channel_id": str(channel.id),
            "channel": self._channel_payload_for(channel, member),
            # docs: interactions/receiving-and-responding.mdx: member permissions and app_permissions are
            # those in the interaction's channel (overwrites applied, topics/permissions.mdx).
            "member": {**member.payload(with_permissions=True), "permissions": str(member_bits)},
            "app_permissions": str(channel_permissions(guild, bot_member, channel)),
            "locale": locale,
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": 0,
            "data": interaction.data,
        }
        if message is not None:
            body["message"] = self.bot_view(message)
        return body

    # ---- messages (shared by the REST routes and the injection API) ----------------------------

    def _mentions(
        self, content: str, guild: FakeGuild | None, allowed: dict[str, Any] | None
    ) -> tuple[list[int], list[int], bool]:
        parse = set(allowed.get("parse", [])) if allowed is not None else {"users", "roles", "everyone"}
        allowed_users = {int(u) for u in (allowed or {}).get("users", [])}
        allowed_roles = {int(r) for r in (allowed or {}).get("roles", [])}
        users = [
            int(found)
            for found in dict.fromkeys(USER_MENTION.findall(content))
            if int(found) in self.users and ("users" in parse or int(found) in allowed_users)
        ]
        roles = [
            int(found)
            for found in dict.fromkeys(ROLE_MENTION.findall(content))
            if guild is not None and int(found) in guild.roles and ("roles" in parse or int(found) in allowed_roles)
        ]
        everyone = ("@everyone" in content or "@here" in content) and "everyone" in parse
        return users, roles, everyone

    def build_attachments(
        self,
        payload: dict[str, Any],
        files: Mapping[int, tuple[str, bytes]],
        *,
        channel_id: int,
        existing: Sequence[FakeAttachment] = (),
        size_limit: int,
        ephemeral: bool = False,
    ) -> list[FakeAttachment] | None:
        """Attachments after a create/edit: kept ones plus uploaded files (registered on the CDN).

        Args:
            payload: the message JSON (its ``attachments`` list decides what is kept).
            files: uploaded files by index (``files[n]``).
            channel_id: for CDN URLs.
            existing: the message's current attachments (edits).
            size_limit: largest file allowed.
            ephemeral: mark attachments ephemeral.

        Returns:
            The new list, or None when the payload does not touch attachments (edit without files).
        """
        check_upload(files, size_limit)
        listed = payload.get("attachments")
        if listed is None and not files:
            return None
        kept_by_id = {attachment.id: attachment for attachment in existing}
        result: list[FakeAttachment] = []
        used: set[int] = set()
        if listed is None:
            result.extend(existing)
            listed = [{"id": index} for index in sorted(files)]
        for position, entry in enumerate(listed):
            entry_id = int(entry.get("id"))
            if entry_id in kept_by_id:
                result.append(kept_by_id[entry_id])
            elif entry_id in files:
                filename, data = files[entry_id]
                used.add(entry_id)
                result.append(
                    self._register_cdn(
                        entry.get("filename") or filename,
                        data,
                        channel_id=channel_id,
                        description=entry.get("description"),
                        ephemeral=ephemeral,
                    )
                )
            else:
                raise DiscordError(
                    400,
                    50035,
                    "Invalid Form Body",
                    {
                        "attachments": {
                            str(position): {
                                "_errors": [{"code": "ATTACHMENT_NOT_FOUND", "message": "Unknown attachment"}]
                            }
                        }
                    },
                )
        for index in sorted(set(files) - used):
            filename, data = files[index]
            result.append(self._register_cdn(filename, data, channel_id=channel_id, ephemeral=ephemeral))
        check_attachment_count(result)
        return result

    def resolve_reference(self, payload: dict[str, Any], channel: FakeChannel) -> dict[str, Any] | None:
        """The stored ``message_reference`` of a reply, or Discord's error for an unknown target.

        Args:
            payload: the message JSON.
            channel: the channel the reply goes to.
        """
        reference = payload.get("message_reference")
        if not reference:
            return None
        target = self.messages.get(int(reference.get("message_id") or 0))
        if target is None or target.deleted:
            if reference.get("fail_if_not_exists", True):
                raise DiscordError(
                    400,
                    50035,
                    "Invalid Form Body",
                    {
                        "message_reference": {
                            "_errors": [{"code": "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "message": "Unknown message"}]
                        }
                    },
                )
            return None
        return {
            "type": 0,
            "message_id": str(target.id),
            "channel_id": str(target.channel_id),
            "guild_id": str(channel.guild_id),
            "fail_if_not_exists": reference.get("fail_if_not_exists", True),
        }

    async def store_message(
        self,
        *,
        channel: FakeChannel,
        author: FakeUser,
        payload: dict[str, Any],
        attachments: list[FakeAttachment],
        source: MessageSource,
        flags: int = 0,
        message_type: int = DEFAULT_MESSAGE,
        interaction: FakeInteraction | None = None,
        reference: dict[str, Any] | None = None,
        message_id: int | None = None,
    ) -> FakeMessage:
        """Create a message, store it, and tell the bot (MESSAGE_CREATE) when Discord would.

        Args:
            channel: where.
            author: who.
            payload: the message JSON (content, embeds, components, allowed_mentions, tts).
            attachments: its files.
            source: who made it and how.
            flags: message flags.
            message_type: the message type.
            interaction: the interaction it answers.
            reference: the stored message_reference (replies).
            message_id: a fixed id.
        """
        guild = self.guild_of(channel)
        content = str(payload.get("content") or "")
        allowed = payload.get("allowed_mentions")
        mention_ids, role_ids, everyone = self._mentions(content, guild, allowed)
        if reference is not None:
            referenced = self.messages[int(reference["message_id"])]
            replied_user = True if allowed is None else allowed.get("replied_user", False)
            if replied_user and referenced.author.id not in mention_ids:
                mention_ids.append(referenced.author.id)
            if message_type == DEFAULT_MESSAGE:
                message_type = REPLY
        now = self.clock.utcnow()
        message = FakeMessage(
            id=message_id or self.ids.next(),
            channel_id=channel.id,
            guild_id=guild.id,
            author=author,
            source=source,
            content=content,
            embeds=list(payload.get("embeds") or []),
            components=list(payload.get("components") or []),
            attachments=attachments,
            flags=flags,
            type=message_type,
            tts=bool(payload.get("tts")),
            mention_ids=mention_ids,
            mention_role_ids=role_ids,
            mention_everyone=everyone,
            reference=reference,
            interaction_id=interaction.id if interaction is not None else None,
            webhook_id=self.application_id if source in ("interaction", "followup") else None,
            timestamp=iso(now),
            raw=copy.deepcopy(payload),
        )
        message.snapshot()
        self.messages[message.id] = message
        if not message.ephemeral:
            channel.last_message_id = message.id
            if channel.is_thread:
                channel.message_count += 1
            if self.gateway.wants(INTENT_GUILD_MESSAGES):
                await self.gateway.dispatch("MESSAGE_CREATE", self.bot_view(message, gateway=True))
        self.notify()
        return message

    async def edit_message(
        self,
        message: FakeMessage,
        payload: dict[str, Any],
        attachments: list[FakeAttachment] | None,
    ) -> FakeMessage:
        """Apply an edit (fields present in ``payload`` replace the old ones) and send MESSAGE_UPDATE.

        Args:
            message: the message.
            payload: the edit JSON.
            attachments: the new attachment list, or None to keep them.
        """
        if "content" in payload:
            message.content = str(payload["content"] or "")
            guild = self.guilds.get(message.guild_id or 0)
            message.mention_ids, message.mention_role_ids, message.mention_everyone = self._mentions(
                message.content, guild, payload.get("allowed_mentions")
            )
        if "embeds" in payload:
            message.embeds = list(payload["embeds"] or [])
        if "components" in payload:
            message.components = list(payload["components"] or [])
        # An edit cannot make a message ephemeral or not; it always ends the "thinking..." state.
        kept = message.flags & (EPHEMERAL | HAS_THREAD)
        flags = int(payload["flags"]) if payload.get("flags") is not None else message.flags
        message.flags = (flags & ~(EPHEMERAL | LOADING | HAS_THREAD)) | kept
        if attachments is not None:
            message.attachments = attachments
        message.edited_timestamp = iso(self.clock.utcnow())
        message.raw = copy.deepcopy(payload)
        message.snapshot()
        if not message.ephemeral and self.gateway.wants(INTENT_GUILD_MESSAGES):
            await self.gateway.dispatch("MESSAGE_UPDATE", self.bot_view(message, gateway=True))
        self.notify()
        return message

    async def delete_message(self, message: FakeMessage) -> None:
        """Mark a message deleted and send MESSAGE_DELETE.

        Args:
            message: the message.
        """
        message.deleted = True
        if not message.ephemeral and self.gateway.wants(INTENT_GUILD_MESSAGES):
            await self.gateway.dispatch(
                "MESSAGE_DELETE",
                {"id": str(message.id), "channel_id": str(message.channel_id), "guild_id": str(message.guild_id)},
            )
        self.notify()

    async def set_reaction(self, message: FakeMessage, emoji: str, user: FakeUser, *, add: bool) -> None:
        """Add or remove one user's reaction and tell the bot.

        Args:
            message: the message.
            emoji: a unicode emoji or ``name:id``.
            user: who reacts.
            add: add (True) or remove (False).
        """
        users = message.reactions.setdefault(emoji, [])
        if add and user.id not in users:
            users.append(user.id)
        elif not add and user.id in users:
            users.remove(user.id)
        else:
            return
        if self.gateway.wants(INTENT_GUILD_MESSAGE_REACTIONS):
            event: dict[str, Any] = {
                "user_id": str(user.id),
                "channel_id": str(message.channel_id),
                "message_id": str(message.id),
                "guild_id": str(message.guild_id),
                "emoji": _emoji_payload(emoji),
                "burst": False,
                "burst_colors": [],
                "type": 0,
            }
            if add:
                guild = self.guilds[message.guild_id or 0]
                if user.id in guild.members:
                    event["member"] = guild.members[user.id].payload()
                event["message_author_id"] = str(message.author.id)
            await self.gateway.dispatch("MESSAGE_REACTION_ADD" if add else "MESSAGE_REACTION_REMOVE", event)
        self.notify()

    # ---- application commands ------------------------------------------------------------------

    def echo_command(self, command: dict[str, Any], guild_id: int | None, command_id: int | None) -> dict[str, Any]:
        """A command as Discord stores and echoes it (ids, application_id, version, defaults).

        Args:
            command: the command JSON the bot sent.
            guild_id: the guild it is registered in, None for global.
            command_id: keep this id (re-registering a command keeps its id).
        """
        echoed = copy.deepcopy(command)
        echoed.update(
            id=str(command_id or self.ids.next()),
            application_id=str(self.application_id),
            version=str(self.ids.next()),
        )
        echoed.setdefault("type", 1)
        echoed.setdefault("description", "")
        # Discord answers the permission bit set as a string whatever the bot sent, and null
        # integration_types as the default (guild install).
        permissions = echoed.get("default_member_permissions")
        echoed["default_member_permissions"] = None if permissions is None else str(permissions)
        echoed.setdefault("nsfw", False)
        echoed.setdefault("contexts", None)
        if echoed.get("integration_types") is None:
            echoed["integration_types"] = [0]
        if guild_id is not None:
            echoed["guild_id"] = str(guild_id)
        return echoed

    def replace_commands(self, commands: Sequence[dict[str, Any]], guild_id: int | None) -> list[dict[str, Any]]:
        """Bulk-overwrite the global or a guild's commands (ids kept for same name and type).

        Args:
            commands: the command JSON list.
            guild_id: the guild, None for global.
        """
        registry = self.global_commands if guild_id is None else self.guild_commands.setdefault(guild_id, {})
        old_ids = {(c["name"], c.get("type", 1)): int(c["id"]) for c in registry.values()}
        fresh: dict[int, dict[str, Any]] = {}
        for command in commands:
            echoed = self.echo_command(command, guild_id, old_ids.get((command["name"], command.get("type", 1))))
            fresh[int(echoed["id"])] = echoed
        registry.clear()
        registry.update(fresh)
        self.notify()
        return list(registry.values())

    def register_commands(
        self, tree: discord.app_commands.CommandTree, *, guild: FakeGuild | None = None
    ) -> list[dict[str, Any]]:
        """Register a command tree as if the bot had synced it (for bots that sync only on demand).

        Afterwards :meth:`slash` knows the option types and checks option names, as after a real sync.

        Args:
            tree: the bot's ``bot.tree`` with its commands added.
            guild: register the tree's commands for this guild; the global ones when None.
        """
        scope = discord.Object(id=guild.id) if guild is not None else None
        payloads = [command.to_dict(tree) for command in tree.get_commands(guild=scope)]
        return self.replace_commands(payloads, guild.id if guild is not None else None)

    def find_command(self, name: str, command_type: int, guild_id: int) -> tuple[dict[str, Any] | None, int | None]:
        """A registered command by name and type: guild commands first, then global.

        Args:
            name: the top-level name.
            command_type: 1 chat input, 2 user, 3 message.
            guild_id: the guild it is used in.

        Returns:
            (the echoed command or None, the guild id it is registered in or None for global).
        """
        for command in self.guild_commands.get(guild_id, {}).values():
            if command["name"] == name and command.get("type", 1) == command_type:
                return command, guild_id
        for command in self.global_commands.values():
            if command["name"] == name and command.get("type", 1) == command_type:
                return command, None
        return None, None

    def _check_visible(self, command: dict[str, Any] | None, member: FakeMember) -> None:
        if command is None or command.get("default_member_permissions") in (None, ""):
            return
        needed = int(command["default_member_permissions"])
        have = member.permissions
        if have & ADMINISTRATOR or (needed and have & needed == needed):
            return
        raise CommandHiddenError(
            f"Discord would not show /{command['name']} to {member.user.username}: it needs permissions {needed}"
            " (pass force=True to send it anyway)"
        )

    def _check_can_invoke(self, member: FakeMember, channel: FakeChannel, *, force: bool) -> None:
        # docs: topics/threads.mdx "Active & Archived Threads": users cannot use application commands in
        # archived threads (even force=True cannot: Discord's client offers no way).
        if channel.is_thread and channel.archived:
            raise ArchivedThreadError(f"{channel.name!r} is archived: members cannot run commands there")
        # docs: topics/permissions.mdx USE_APPLICATION_COMMANDS (and no VIEW_CHANNEL hides the channel).
        bits = channel_permissions(self.guild_of(channel), member, channel)
        if not force and bits & (VIEW_CHANNEL | USE_APPLICATION_COMMANDS) != VIEW_CHANNEL | USE_APPLICATION_COMMANDS:
            raise CommandHiddenError(
                f"{member.user.username} cannot use application commands in #{channel.name} (pass force=True)"
            )

    # ---- injection -----------------------------------------------------------------------------

    def _new_interaction(
        self,
        *,
        type: int,
        member: FakeMember,
        channel: FakeChannel,
        data: dict[str, Any],
        name: str,
        message: FakeMessage | None,
    ) -> FakeInteraction:
        interaction = FakeInteraction(
            fake=self,
            interaction_id=self.ids.next(),
            token="aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48),
            type=type,
            user=member,
            guild_id=channel.guild_id,
            channel_id=channel.id,
            data=data,
            message_id=message.id if message is not None else None,
            name=name,
            attachment_size_limit=upload_limit(self, self.guild_of(channel)),
        )
        self.interactions[interaction.id] = interaction
        self._by_token[interaction.token] = interaction
        return interaction

    def interaction_for_token(self, token: str) -> FakeInteraction | None:
        """The interaction that owns a webhook token.

        Args:
            token: the token.
        """
        return self._by_token.get(token)

    async def _send_interaction(
        self,
        interaction: FakeInteraction,
        member: FakeMember,
        channel: FakeChannel,
        *,
        message: FakeMessage | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        await self.wait_until_ready()
        payload = self.interaction_payload(interaction, member, channel, message=message, locale=locale)

        def sent(moment: float) -> None:
            if interaction.sent_at is None:
                interaction.sent_at = moment

        await self.gateway.dispatch("INTERACTION_CREATE", payload, on_sent=sent)
        self.notify()
        return interaction

    def _option_value(self, value: Any, option_type: int, resolved: dict[str, dict[str, Any]], guild: FakeGuild) -> Any:
        if isinstance(value, FakeAttachment):
            resolved.setdefault("attachments", {})[str(value.id)] = value.payload()
            return str(value.id)
        if isinstance(value, FakeMember):
            resolved.setdefault("users", {})[str(value.id)] = value.user.payload()
            resolved.setdefault("members", {})[str(value.id)] = value.payload(with_user=False, with_permissions=True)
            return str(value.id)
        if isinstance(value, FakeUser):
            resolved.setdefault("users", {})[str(value.id)] = value.payload()
            if value.id in guild.members:
                member_payload = guild.members[value.id].payload(with_user=False, with_permissions=True)
                resolved.setdefault("members", {})[str(value.id)] = member_payload
            return str(value.id)
        if isinstance(value, FakeRole):
            resolved.setdefault("roles", {})[str(value.id)] = value.payload()
            return str(value.id)
        if isinstance(value, FakeChannel):
            channel_payload = value.payload()
            channel_payload["permissions"] = str(ALL_PERMISSIONS)  # the invoking member's are not known here
            resolved.setdefault("channels", {})[str(value.id)] = channel_payload
            return str(value.id)
        if option_type == OPTION_NUMBER and isinstance(value, int):
            return value
        return value

    @staticmethod
    def _infer_option_type(value: Any) -> int:
        if isinstance(value, bool):
            return OPTION_BOOLEAN
        if isinstance(value, int):
            return OPTION_INTEGER
        if isinstance(value, float):
            return OPTION_NUMBER
        if isinstance(value, FakeAttachment):
            return OPTION_ATTACHMENT
        if isinstance(value, (FakeMember, FakeUser)):
            return OPTION_USER
        if isinstance(value, FakeRole):
            return OPTION_ROLE
        if isinstance(value, FakeChannel):
            return OPTION_CHANNEL
        return OPTION_STRING

    @staticmethod
    def _check_option(spec: dict[str, Any], value: Any, path: str) -> None:
        expected: dict[int, tuple[type, ...]] = {
            OPTION_STRING: (str,),
            OPTION_INTEGER: (int,),
            OPTION_BOOLEAN: (bool,),
            OPTION_NUMBER: (int, float),
            OPTION_ATTACHMENT: (FakeAttachment,),
            OPTION_USER: (FakeMember, FakeUser),
            OPTION_MENTIONABLE: (FakeMember, FakeUser, FakeRole),
            OPTION_ROLE: (FakeRole,),
            OPTION_CHANNEL: (FakeChannel,),
        }
        kinds = expected.get(spec["type"])
        bad_bool = isinstance(value, bool) and spec["type"] in (OPTION_INTEGER, OPTION_NUMBER)
        if kinds is not None and (not isinstance(value, kinds) or bad_bool):
            raise ValueError(f"option {path} is type {spec['type']} on Discord; {value!r} does not fit")
        choices = spec.get("choices")
        if choices and value not in [choice["value"] for choice in choices]:
            raise ValueError(f"option {path} must be one of {[c['value'] for c in choices]}, not {value!r}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if spec.get("min_value") is not None and value < spec["min_value"]:
                raise ValueError(f"option {path}={value} is below min_value {spec['min_value']}")
            if spec.get("max_value") is not None and value > spec["max_value"]:
                raise ValueError(f"option {path}={value} is above max_value {spec['max_value']}")
        if isinstance(value, str):
            if spec.get("min_length") is not None and len(value) < spec["min_length"]:
                raise ValueError(f"option {path} is shorter than min_length {spec['min_length']}")
            if spec.get("max_length") is not None and len(value) > spec["max_length"]:
                raise ValueError(f"option {path} is longer than max_length {spec['max_length']}")

    def _build_command_data(
        self,
        command: str,
        options: Mapping[str, Any] | None,
        *,
        guild: FakeGuild,
        member: FakeMember,
        channel: FakeChannel,
        focused: str | None,
        force: bool,
    ) -> dict[str, Any]:
        parts = command.strip().lstrip("/").split()
        if not parts or len(parts) > 3:
            raise ValueError(f"command path {command!r} must be 'name', 'name sub' or 'name group sub'")
        registered, registered_guild = self.find_command(parts[0], 1, guild.id)
        if not force:
            self._check_visible(registered, member)
        self._check_can_invoke(member, channel, force=force)
        specs: list[dict[str, Any]] | None = None
        if registered is not None:
            specs = registered.get("options") or []
            for part in parts[1:]:
                sub = next((o for o in specs if o["name"] == part and o["type"] in (1, 2)), None)
                if sub is None:
                    raise ValueError(f"/{parts[0]} has no subcommand or group {part!r}")
                specs = sub.get("options") or []
        values = dict(options or {})
        resolved: dict[str, dict[str, Any]] = {}
        leaf: list[dict[str, Any]] = []
        by_name = {spec["name"]: spec for spec in specs} if specs is not None else {}
        if specs is not None:
            unknown = set(values) - set(by_name)
            if unknown:
                raise ValueError(f"/{command} has no options {sorted(unknown)}; it has {sorted(by_name)}")
            if focused is None:
                missing = [s["name"] for s in specs if s.get("required") and s["name"] not in values]
                if missing:
                    raise ValueError(f"/{command} needs options {missing}")
        for name, value in values.items():
            spec = by_name.get(name)
            option_type = spec["type"] if spec is not None else self._infer_option_type(value)
            if spec is not None and name != focused:
                self._check_option(spec, value, f"{command}.{name}")
            entry: dict[str, Any] = {
                "name": name,
                "type": option_type,
                "value": self._option_value(value, option_type, resolved, guild),
            }
            if name == focused:
                entry["focused"] = True
                entry["value"] = value if isinstance(value, str) else str(value)
            leaf.append(entry)
        if focused is not None and focused not in values:
            raise ValueError(f"the focused option {focused!r} needs a (partial) value in options")
        nested = leaf
        for depth, part in reversed(list(enumerate(parts[1:], start=1))):
            kind = OPTION_SUB_COMMAND if depth == len(parts) - 1 else OPTION_SUB_COMMAND_GROUP
            nested = [{"name": part, "type": kind, "options": nested}]
        data: dict[str, Any] = {
            "id": registered["id"] if registered is not None else str(self.ids.next()),
            "name": parts[0],
            "type": 1,
            "options": nested,
        }
        if resolved:
            data["resolved"] = resolved
        if registered_guild is not None:
            data["guild_id"] = str(registered_guild)
        return data

    async def slash(
        self,
        command: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: FakeMember | None = None,
        channel: FakeChannel | None = None,
        locale: str = "en-US",
        force: bool = False,
    ) -> FakeInteraction:
        """Inject a slash command (INTERACTION_CREATE type 2) and return its handle.

        Option types come from the registered command when the bot synced it (the fake then also
        checks names, required options, choices and ranges, as Discord's client would); otherwise
        they are inferred from the Python values (str, int, float, bool, FakeAttachment,
        FakeMember/FakeUser, FakeRole, FakeChannel).

        Args:
            command: "name", "name sub" or "name group sub".
            options: option name -> value; FakeAttachment values come with resolved attachment data.
            user: who runs it; the ordinary member ``bob`` when None.
            channel: where; the default channel when None.
            locale: the user's locale.
            force: send it even if default_member_permissions would hide it from ``user``.
        """
        channel = channel or self.channel
        member = user or self.member
        data = self._build_command_data(
            command, options, guild=self.guild_of(channel), member=member, channel=channel, focused=None, force=force
        )
        interaction = self._new_interaction(
            type=APPLICATION_COMMAND, member=member, channel=channel, data=data, name=command, message=None
        )
        return await self._send_interaction(interaction, member, channel, locale=locale)

    async def autocomplete(
        self,
        command: str,
        options: Mapping[str, Any],
        *,
        focused: str,
        user: FakeMember | None = None,
        channel: FakeChannel | None = None,
    ) -> FakeInteraction:
        """Inject an autocomplete request (type 4); read ``.choices`` after ``wait_for_response()``.

        Args:
            command: "name", "name sub" or "name group sub".
            options: what the user has filled in so far (the focused one as typed).
            focused: the option being typed.
            user: who types; ``bob`` when None.
            channel: where; the default channel when None.
        """
        channel = channel or self.channel
        member = user or self.member
        data = self._build_command_data(
            command, options, guild=self.guild_of(channel), member=member, channel=channel, focused=focused, force=True
        )
        interaction = self._new_interaction(
            type=AUTOCOMPLETE, member=member, channel=channel, data=data, name=command, message=None
        )
        return await self._send_interaction(interaction, member, channel)

    async def click(
        self,
        message: FakeMessage | int,
        custom_id: str,
        *,
        user: FakeMember | None = None,
        values: Sequence[str | int | FakeMember | FakeRole | FakeChannel] | None = None,
    ) -> FakeInteraction:
        """Click a button or choose in a select menu on a message (type 3).

        Args:
            message: the message (or its id) carrying the component.
            custom_id: the component's custom_id (it must be on the message and enabled).
            user: who clicks; ``bob`` when None.
            values: chosen values for select menus.
        """
        target = message if isinstance(message, FakeMessage) else self.messages[int(message)]
        if target.deleted:
            raise ValueError(f"message {target.id} was deleted; nobody can click on it")
        component = target.component(custom_id)
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled on message {target.id}")
        channel = self.find_channel(target.channel_id)
        if channel is None:
            raise ValueError(f"channel {target.channel_id} is unknown")
        member = user or self.member
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if component["type"] in SELECT_TYPES:
            resolved: dict[str, dict[str, Any]] = {}
            chosen = [
                self._option_value(v, OPTION_STRING, resolved, self.guild_of(channel))
                if not isinstance(v, (str, int))
                else str(v)
                for v in (values or [])
            ]
            if component["type"] == 3:
                allowed = [option["value"] for option in component.get("options", [])]
                stray = [v for v in chosen if v not in allowed]
                if stray:
                    raise ValueError(f"select {custom_id!r} offers {allowed}, not {stray}")
            data["values"] = chosen
            if resolved:
                data["resolved"] = resolved
        elif values:
            raise ValueError("values are for select menus only")
        interaction = self._new_interaction(
            type=MESSAGE_COMPONENT, member=member, channel=channel, data=data, name=custom_id, message=target
        )
        return await self._send_interaction(interaction, member, channel, message=target)

    async def select(
        self,
        message: FakeMessage | int,
        custom_id: str,
        values: Sequence[str | int | FakeMember | FakeRole | FakeChannel],
        *,
        user: FakeMember | None = None,
    ) -> FakeInteraction:
        """Choose values in a select menu (a :meth:`click` with values).

        Args:
            message: the message carrying the select.
            custom_id: the select's custom_id.
            values: the chosen values.
            user: who chooses; ``bob`` when None.
        """
        return await self.click(message, custom_id, user=user, values=values)

    async def submit_modal(
        self,
        source: FakeInteraction,
        values: Mapping[str, str | Sequence[str]],
        *,
        user: FakeMember | None = None,
    ) -> FakeInteraction:
        """Submit the modal that the bot opened in answer to ``source`` (type 5).

        Args:
            source: the interaction the bot answered with a modal (callback type 9).
            values: text input (or select) custom_id -> value(s); untouched inputs keep their default.
            user: who submits; the source's user when None.
        """
        modal = source.modal
        if modal is None:
            raise ValueError(f"{source!r} was not answered with a modal")
        remaining = dict(values)

        def leaf(component: dict[str, Any]) -> dict[str, Any] | None:
            custom_id = component.get("custom_id")
            if custom_id is None:
                return None
            if component["type"] == 4:
                text = remaining.pop(custom_id, component.get("value") or "")
                if not isinstance(text, str):
                    raise ValueError(f"text input {custom_id!r} takes a string")
                if component.get("required", True) and not text:
                    raise ValueError(f"text input {custom_id!r} is required")
                if component.get("max_length") is not None and len(text) > component["max_length"]:
                    raise ValueError(f"text input {custom_id!r} allows {component['max_length']} characters")
                return {"type": 4, "id": component.get("id"), "custom_id": custom_id, "value": text}
            chosen = remaining.pop(custom_id, [])
            return {
                "type": component["type"],
                "id": component.get("id"),
                "custom_id": custom_id,
                "values": [chosen] if isinstance(chosen, str) else list(chosen),
            }

        submitted: list[dict[str, Any]] = []
        for component in modal.get("components", []):
            if component.get("type") == 1:
                children = [c for c in (leaf(child) for child in component.get("components", [])) if c is not None]
                submitted.append({"type": 1, "id": component.get("id"), "components": children})
            elif component.get("type") == 18:
                inner = leaf(component["component"])
                if inner is not None:
                    submitted.append({"type": 18, "id": component.get("id"), "component": inner})
            else:
                inner = leaf(component)
                if inner is not None:
                    submitted.append(inner)
        if remaining:
            raise ValueError(f"the modal has no inputs {sorted(remaining)}")
        channel = self.find_channel(source.channel_id)
        assert channel is not None
        member = user or (source.user if isinstance(source.user, FakeMember) else self.member)
        message = self.messages.get(source.message_id) if source.message_id is not None else None
        data = {"custom_id": modal["custom_id"], "components": submitted}
        interaction = self._new_interaction(
            type=MODAL_SUBMIT, member=member, channel=channel, data=data, name=modal["custom_id"], message=message
        )
        return await self._send_interaction(interaction, member, channel, message=message)

    async def message_command(
        self,
        name: str,
        target: FakeMessage,
        *,
        user: FakeMember | None = None,
        force: bool = False,
    ) -> FakeInteraction:
        """Run a message context-menu command on a message (type 2, data.type 3, target resolved).

        Args:
            name: the command's name.
            target: the message it is run on.
            user: who runs it; ``bob`` when None.
            force: send it even if default_member_permissions would hide it.
        """
        channel = self.find_channel(target.channel_id)
        assert channel is not None
        member = user or self.member
        registered, registered_guild = self.find_command(name, 3, channel.guild_id)
        if not force:
            self._check_visible(registered, member)
        self._check_can_invoke(member, channel, force=force)
        data: dict[str, Any] = {
            "id": registered["id"] if registered else str(self.ids.next()),
            "name": name,
            "type": 3,
            "target_id": str(target.id),
            "resolved": {"messages": {str(target.id): self.message_payload(target)}},
        }
        if registered_guild is not None:
            data["guild_id"] = str(registered_guild)
        interaction = self._new_interaction(
            type=APPLICATION_COMMAND, member=member, channel=channel, data=data, name=name, message=None
        )
        return await self._send_interaction(interaction, member, channel)

    async def user_command(
        self,
        name: str,
        target: FakeMember,
        *,
        user: FakeMember | None = None,
        channel: FakeChannel | None = None,
        force: bool = False,
    ) -> FakeInteraction:
        """Run a user context-menu command on a member (type 2, data.type 2).

        Args:
            name: the command's name.
            target: the member it is run on.
            user: who runs it; ``bob`` when None.
            channel: where; the default channel when None.
            force: send it even if default_member_permissions would hide it.
        """
        channel = channel or self.channel
        member = user or self.member
        registered, registered_guild = self.find_command(name, 2, channel.guild_id)
        if not force:
            self._check_visible(registered, member)
        self._check_can_invoke(member, channel, force=force)
        resolved: dict[str, dict[str, Any]] = {}
        self._option_value(target, OPTION_USER, resolved, self.guild_of(channel))
        data: dict[str, Any] = {
            "id": registered["id"] if registered else str(self.ids.next()),
            "name": name,
            "type": 2,
            "target_id": str(target.id),
            "resolved": resolved,
        }
        if registered_guild is not None:
            data["guild_id"] = str(registered_guild)
        interaction = self._new_interaction(
            type=APPLICATION_COMMAND, member=member, channel=channel, data=data, name=name, message=None
        )
        return await self._send_interaction(interaction, member, channel)

    async def post_message(
        self,
        content: str = "",
        *,
        author: FakeMember | None = None,
        channel: FakeChannel | None = None,
        attachments: Sequence[FakeAttachment] = (),
        reply_to: FakeMessage | None = None,
        mention_author: bool = True,
        embeds: Sequence[dict[str, Any]] = (),
    ) -> FakeMessage:
        """A member posts a message (MESSAGE_CREATE). Mentions are parsed from ``<@id>`` / ``<@&id>`` in content.

        Without the MESSAGE_CONTENT intent the bot gets empty content/embeds/attachments/components
        unless the text @mentions it or it is a pinging reply to a regular (non-interaction) bot message.

        Args:
            content: the text; use ``fake.bot_user.mention`` to ping the bot.
            author: who posts; ``bob`` when None.
            channel: where; the default channel when None.
            attachments: files registered with :meth:`attachment`.
            reply_to: the message this replies to (message_reference + referenced_message).
            mention_author: whether the reply pings the replied-to author.
            embeds: embeds.
        """
        await self.wait_until_ready()
        channel = channel or self.channel
        member = author or self.member
        guild = self.guild_of(channel)
        await self._member_may_post(member, channel)
        mention_ids, role_ids, everyone = self._mentions(content, guild, None)
        reference = None
        message_type = DEFAULT_MESSAGE
        if reply_to is not None:
            reference = {
                "type": 0,
                "message_id": str(reply_to.id),
                "channel_id": str(reply_to.channel_id),
                "guild_id": str(reply_to.guild_id),
            }
            message_type = REPLY
            if mention_author and reply_to.author.id not in mention_ids:
                mention_ids.append(reply_to.author.id)
        message = FakeMessage(
            id=self.ids.next(),
            channel_id=channel.id,
            guild_id=guild.id,
            author=member.user,
            source="user",
            content=content,
            embeds=list(embeds),
            attachments=list(attachments),
            type=message_type,
            mention_ids=mention_ids,
            mention_role_ids=role_ids,
            mention_everyone=everyone,
            reference=reference,
            timestamp=iso(self.clock.utcnow()),
        )
        message.snapshot()
        self.messages[message.id] = message
        channel.last_message_id = message.id
        if self.gateway.wants(INTENT_GUILD_MESSAGES):
            await self.gateway.dispatch("MESSAGE_CREATE", self.bot_view(message, gateway=True))
        self.notify()
        return message

    async def _member_may_post(self, member: FakeMember, channel: FakeChannel) -> None:
        # Discord's client lets nobody post without VIEW_CHANNEL and SEND_MESSAGES(_IN_THREADS); a post
        # unarchives an archived unlocked thread, a locked one refuses non-moderators (topics/threads.mdx).
        bits = channel_permissions(self.guild_of(channel), member, channel)
        needed = VIEW_CHANNEL | send_permission(channel)
        if bits & needed != needed:
            raise PermissionError(f"{member.user.username} may not post in #{channel.name}")
        try:
            await before_thread_post(self, channel, bits)
        except DiscordError as refused:
            raise ArchivedThreadError(f"{member.user.username} cannot post in {channel.name!r}: {refused}") from None

    def dm_messages(self, user: FakeMember | FakeUser) -> list[FakeMessage]:
        """The bot's direct messages to a user, oldest first.

        Args:
            user: the member or user.
        """
        return self.dms.messages_to(user)

    def close_dms(self, user: FakeMember | FakeUser) -> None:
        """The user accepts no DMs from now on: the bot's DMs get 403 50007.

        Args:
            user: the member or user.
        """
        self.dms.closed.add(user.id)

    async def set_thread_state(self, thread: FakeChannel, *, archived: bool, locked: bool | None = None) -> None:
        """A moderator (or Discord's auto-archive) archives/unarchives and locks/unlocks a thread (THREAD_UPDATE).

        Args:
            thread: the thread.
            archived: archive (True) or unarchive.
            locked: lock or unlock; unchanged when None.
        """
        await set_thread_archived(self, thread, archived, locked)

    async def react(self, message: FakeMessage, emoji: str, *, user: FakeMember | None = None) -> None:
        """A member adds a reaction (MESSAGE_REACTION_ADD).

        Args:
            message: the message.
            emoji: a unicode emoji, or ``name:id`` for a custom one.
            user: who reacts; ``bob`` when None.
        """
        await self.wait_until_ready()
        await self.set_reaction(message, emoji, (user or self.member).user, add=True)

    async def unreact(self, message: FakeMessage, emoji: str, *, user: FakeMember | None = None) -> None:
        """A member removes a reaction (MESSAGE_REACTION_REMOVE).

        Args:
            message: the message.
            emoji: a unicode emoji, or ``name:id``.
            user: who; ``bob`` when None.
        """
        await self.wait_until_ready()
        await self.set_reaction(message, emoji, (user or self.member).user, add=False)

    # ---- HTTP plumbing -------------------------------------------------------------------------

    def client_errors(self, *, status: int | None = None, code: int | None = None) -> list[ErrorRecord]:
        """4xx answers the bot received, optionally filtered.

        Args:
            status: only this HTTP status.
            code: only this Discord JSON code.
        """
        return [e for e in self.errors if (status is None or e.status == status) and (code is None or e.code == code)]

    def requests_to(self, method: str | None = None, path: str | None = None) -> list[RequestRecord]:
        """Requests the bot made, filtered by method and an fnmatch-style glob on the path.

        Args:
            method: HTTP method.
            path: glob on the path (API paths without /api/v10).
        """
        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper()) and (path is None or fnmatch.fnmatchcase(r.path, path))
        ]

    @property
    def unhandled_requests(self) -> list[RequestRecord]:
        """Requests to routes the fake does not implement."""
        return [r for r in self.requests if not r.handled]

    def _fault_response(self, rule: FaultRule) -> web.Response:
        if rule.kind == "rate_limit":
            # The same shape as a real bucket's 429 (ratelimits.rate_limited), with an exhausted bucket's headers.
            now = time.monotonic()
            bucket = Bucket(
                "injected " + (rule.path or "*"), 5, rule.retry_after, used=5, reset_at=now + rule.retry_after
            )
            response = rate_limited(
                rule.retry_after, scope=rule.scope, bucket_headers=bucket.headers(now), code=rule.code
            )
            response[DISCORD_CODE] = rule.code
            response[DISCORD_MESSAGE] = "You are being rate limited."
            return response
        status_text = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}.get(
            rule.status, ""
        )
        return json_response({"message": f"{rule.status}: {status_text}", "code": 0}, status=rule.status)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        if request.path.startswith("/gateway"):
            return await handler(request)
        path = request.path[len(API_PREFIX) :] if request.path.startswith(API_PREFIX) else request.path
        self._inflight += 1
        self.notify()
        status = 0
        code: int | None = None
        message = ""
        fault: str | None = None
        handled = True
        # Raw bodies and answers for the conformance check (conformance.py); the CDN is not the API.
        request_body = b""
        answer: web.StreamResponse | None = None
        if request.body_exists and not path.startswith("/cdn/"):
            request_body = await request.read()
            # read() caches the bytes for text()/json(), but multipart readers stream: give them a
            # fresh stream over the same bytes (its limit is above the size, so it never pauses a transport).
            replay = StreamReader(BaseProtocol(asyncio.get_running_loop()), max(2**16, len(request_body)))
            replay.feed_data(request_body)
            replay.feed_eof()
            request._payload = replay
        try:
            refusal, delays = self.faults.take(request.method, path)
            if refusal is not None and refusal.kind == "reset":
                fault = refusal.describe()
                if request.transport is not None:
                    request.transport.abort()
                # Nothing reaches the client; aiohttp drops this answer on the closed transport.
                return web.Response(status=500)
            if refusal is not None:
                fault = refusal.describe()
                response: web.StreamResponse = self._fault_response(refusal)
            else:
                try:
                    if path.startswith("/cdn/") or self._authorized(request, path):
                        response = await handler(request)
                    else:
                        response = json_response({"message": "401: Unauthorized", "code": 0}, status=401)
                except DiscordError as error:
                    response = json_response(error.body(), status=error.status)
                except web.HTTPNotFound:
                    handled = False
                    response = json_response({"message": "404: Not Found", "code": 0}, status=404)
                except web.HTTPMethodNotAllowed:
                    handled = False
                    response = json_response({"message": "405: Method Not Allowed", "code": 0}, status=405)
                except Exception as error:
                    # A bug in the fake: answer a non-retried 400 and make every wait and the bot's stop fail.
                    self.internal_errors.append(error)
                    text = f"fake Discord internal error: {error!r}"
                    response = json_response({"message": text, "code": 0}, status=400)
            for delay in delays:
                fault = fault or delay.describe()
                await asyncio.sleep(delay.seconds)
            status = response.status
            code = response.get(DISCORD_CODE)  # type: ignore[assignment]
            message = response.get(DISCORD_MESSAGE, "")
            answer = response
            return response
        finally:
            now = time.monotonic()
            answer_body = answer.body if isinstance(answer, web.Response) else None
            self.requests.append(
                RequestRecord(
                    method=request.method,
                    path=path,
                    query=dict(request.query),
                    status=status,
                    at=now,
                    error_code=code,
                    fault=fault,
                    handled=handled,
                    request_content_type=request.headers.get("Content-Type", ""),
                    request_body=request_body,
                    answer_headers=dict(answer.headers) if answer is not None else {},
                    answer_body=answer_body if isinstance(answer_body, bytes) else b"",
                )
            )
            if 400 <= status < 500:
                self.errors.append(
                    ErrorRecord(
                        method=request.method,
                        path=path,
                        status=status,
                        code=code,
                        message=message,
                        at=now,
                        interaction_id=request.get(INTERACTION_ID),
                        fault=fault,
                    )
                )
            self._inflight -= 1
            self.notify()

    def _authorized(self, request: web.Request, path: str) -> bool:
        # Interaction callbacks and webhook calls authenticate with the token in the URL.
        if path.startswith(("/interactions/", "/webhooks/")):
            return True
        return request.headers.get("Authorization") == f"Bot {self.token}"
