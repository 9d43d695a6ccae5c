"""jamgen's Discord client: the bot, the wiring of its parts, command sync, and how it runs."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import signal
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.config import Settings
from bot.discord import stems, views
from bot.discord.delivery import DiscordDeliverer
from bot.discord.interactions import report_error
from bot.discord.jams import JamPlaces
from bot.discord.render import NO_MENTIONS
from bot.discord.voice import PlayButtons, VoiceJams
from bot.service import JamService
from bot.service.sessions import SessionService

log = logging.getLogger("jamgen.discord")

EXTENSIONS = (
    "cogs.generate",
    "cogs.remix",
    "cogs.stems",
    "cogs.buttons",
    "cogs.library",
    "cogs.admin",
    "cogs.sessions",
    "cogs.voice",
)


class JamBot(commands.Bot):
    """jamgen's Discord client.

    Args:
        settings: validated settings.
        service: the jam service (started in ``setup_hook``).
        options: extra ``discord.Client`` options (tests pass ``guild_ready_timeout``).
    """

    # Built in ``setup_hook``, before any extension loads and before the service starts.
    deliverer: DiscordDeliverer
    voice_jams: VoiceJams

    def __init__(self, settings: Settings, service: JamService, **options: Any) -> None:
        intents = discord.Intents.default()
        intents.message_content = settings.message_content_intent
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            allowed_mentions=NO_MENTIONS,
            # Every command is installable to a server and to a member's account, and usable in servers,
            # the bot's DMs and other DMs; commands that need the bot in the server narrow this in their cog.
            allowed_installs=app_commands.AppInstallationType(guild=True, user=True),
            allowed_contexts=app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=True),
            **options,
        )
        self.settings = settings
        self.service = service
        # Deletions of short-lived replies; discord.py's own ``delete_after`` outlives the bot's close.
        self._expiring: set[asyncio.Task[None]] = set()

    async def on_message(self, message: discord.Message, /) -> None:
        """jamgen has no prefix commands: messages only matter to the reply-to-remix listener."""

    @property
    def user_id(self) -> int | None:
        """The bot's own user id once logged in."""
        return self.user.id if self.user else None

    @property
    def sessions(self) -> SessionService:
        """The service's jam sessions."""
        return self.service.sessions

    def build_deliverer(self) -> DiscordDeliverer:
        """The deliverer with everything a take's message carries: its buttons and each take's place in its jam."""
        return DiscordDeliverer(
            self,
            self.service,
            result_view=views.result_view,
            progress_view=views.progress_view,
            stems_view=stems.stems_view,
            hooks=[JamPlaces(self, self.service), PlayButtons(self)],
            card_style=self.settings.card_style,
        )

    async def setup_hook(self) -> None:
        self.deliverer = self.build_deliverer()
        self.voice_jams = VoiceJams(self, idle_minutes=self.settings.voice_idle_minutes)
        self.service.delivered_listeners.append(self.voice_jams.delivered)
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        self.tree.error(self.on_app_command_error)
        await self.service.start(self.deliverer)
        await self.sync_commands()

    async def sync_commands(self, *, force: bool = False) -> bool:
        """Sync slash commands when they changed since the last sync (or when forced).

        Returns:
            whether a sync was sent to Discord.
        """
        guild = discord.Object(self.settings.dev_guild_id) if self.settings.dev_guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        payload = [c.to_dict(self.tree) for c in self.tree.get_commands(guild=guild)]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        marker = self.settings.data_dir / f"commands-{self.settings.dev_guild_id or 'global'}.sha256"
        if not force and marker.exists() and marker.read_text() == digest:
            return False
        await self.tree.sync(guild=guild)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(digest)
        log.info("synced %d application commands", len(payload))
        return True

    async def reply_briefly(self, message: discord.Message, text: str, *, seconds: float = 60.0) -> None:
        """Reply in the channel and delete the reply after ``seconds`` (or when the bot closes)."""
        try:
            reply = await message.reply(text, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            log.info("could not reply to message %s: %s", message.id, exc.status)
            return

        async def expire() -> None:
            await asyncio.sleep(seconds)
            with contextlib.suppress(discord.HTTPException):
                await reply.delete()

        task = asyncio.create_task(expire(), name="jamgen-expire-reply")
        self._expiring.add(task)
        task.add_done_callback(self._expiring.discard)

    async def close(self) -> None:
        for task in list(self._expiring):
            task.cancel()
        if hasattr(self, "voice_jams"):
            await self.voice_jams.close()
        await self.service.close()
        await super().close()

    async def on_app_command_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        """Turn any error into a friendly ephemeral message; details go to the log with an error id."""
        cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        await report_error(interaction, cause)


def build_bot(settings: Settings, service: JamService, **options: Any) -> JamBot:
    """The production factory; tests build the bot the same way (plus test-only client options).

    Args:
        service: the jam service (not yet started).
        options: extra discord.Client options.
    """
    return JamBot(settings, service, **options)


async def run_bot(settings: Settings) -> None:
    """Run the bot until it is stopped; SIGTERM/SIGINT close it gracefully (the running batch may finish)."""
    from bot.service.runtime import running_service

    token = settings.require_token()
    async with running_service(settings) as service:
        bot = build_bot(settings, service)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lambda: asyncio.ensure_future(bot.close()))
        async with bot:
            await bot.start(token)
