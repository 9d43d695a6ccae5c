"""Delivery of finished takes and the member's progress message while a job waits and runs.

Interaction tokens live here in memory only (``DiscordDeliverer.live``), never in the store or the logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import aiohttp
import discord

from bot.discord.cards import header_text, take_card
from bot.discord.render import (
    job_id_of,
    message_url,
    owner_only,
    render_update,
    result_embeds,
    result_files,
    stem_messages,
    stems_embed,
    stems_files,
)
from bot.service import Delivery, DeliveryError, JamService, Job, JobUpdate, Mode, Phase, RenderedTake
from bot.service.requests import is_personal

log = logging.getLogger("jamgen.discord")

# Discord lets an interaction token be used for 15 minutes; leave a margin for the upload itself.
TOKEN_LIFETIME = dt.timedelta(minutes=14, seconds=30)
# An upload that has not been answered after this long is given up and retried (the retry first looks
# whether the message arrived anyway). aiohttp's own limit would be 5 minutes.
UPLOAD_TIMEOUT_S = 120.0
# Before posting a track again (a retry, a redelivery after a restart), this many channel messages since
# the job was made are searched for an earlier post of it.
HISTORY_SCAN_LIMIT = 500
# Discord allows at most 5 followups per interaction where the app is only installed to the member
# (interactions/receiving-and-responding.mdx "Create Followup Message").
PERSONAL_FOLLOWUPS = 5
# A personal job whose ETA at submit leaves less than this of the token's life is delivered by DM.
ETA_MARGIN = dt.timedelta(minutes=1)

ResultView = Callable[[Job, int], discord.ui.View]
"""The buttons under a finished job with that many takes."""
ProgressView = Callable[[str], discord.ui.View]
"""The buttons under a job's progress message."""
StemsView = Callable[[str, list[RenderedTake]], discord.ui.View]
"""The buttons under one message of a stems job's stems."""
DeliveryHook = Callable[[Delivery, dict[str, Any]], Awaitable[None]]
"""Called with each delivery and the message's kwargs before it is posted; may change them, must not raise."""


@dataclass
class LiveJob:
    """How to reach the member who asked for a job while jamgen runs (memory only).

    Args:
        interaction: the slash command/button/modal interaction that asked, if any.
        progress_message: a channel message showing progress (reply-to-remix jobs).
        personal: asked where jamgen is not installed (``is_personal``): answered only through the interaction.
        by_dm: deliver by DM (the member was told on the receipt that the token would not last).
        followups: followups this interaction already used (Discord allows a personal one 5).
    """

    interaction: discord.Interaction | None = None
    progress_message: discord.Message | None = None
    personal: bool = False
    by_dm: bool = False
    followups: int = 0
    # Set once the receipt is shown, so a fast job's result never gets overwritten by it.
    shown: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_shown(self) -> None:
        """Wait (briefly) until the receipt/progress message exists."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.shown.wait(), 10)


def interaction_alive(interaction: discord.Interaction, lifetime: dt.timedelta = TOKEN_LIFETIME) -> bool:
    """Whether the interaction's token can still be used (with a safety margin)."""
    return discord.utils.utcnow() - interaction.created_at < lifetime


class DiscordDeliverer:
    """Posts finished takes as regular channel messages, so members can reply to them.

    A reply to an interaction's followup reaches a bot without the Message Content intent with
    empty content and no attachments (Discord's docs, "you might not need a privileged intent"), so
    takes go into the channel and the member's private progress message becomes a link to the take.
    A followup is used only where a channel post is impossible (the bot may not post or see there).

    Args:
        client: the connected Discord client.
        service: the jam service whose jobs are delivered.
        result_view: the buttons under a take.
        progress_view: the buttons under a waiting or running job.
        stems_view: the buttons under a message of stems (none without it).
        hooks: run in order on each take's message before it is posted (a jam adds the take's place).
        card_style: ``v2`` (a take card, Components V2) or ``classic`` (embeds, files under them).
    """

    def __init__(
        self,
        client: discord.Client,
        service: JamService,
        *,
        result_view: ResultView,
        progress_view: ProgressView,
        stems_view: StemsView | None = None,
        hooks: Iterable[DeliveryHook] = (),
        card_style: str = "v2",
    ) -> None:
        self.client = client
        self.service = service
        self.result_view = result_view
        self.progress_view = progress_view
        self.stems_view = stems_view
        self.hooks = tuple(hooks)
        self.card_style = card_style
        self.upload_timeout_s = UPLOAD_TIMEOUT_S
        self.token_lifetime = TOKEN_LIFETIME
        self.live: dict[str, LiveJob] = {}

    def outlives_token(self, eta_s: float | None) -> bool:
        """Whether a job ready in ``eta_s`` would come after its interaction's token died (unknown: no)."""
        return eta_s is not None and dt.timedelta(seconds=eta_s) + ETA_MARGIN > self.token_lifetime

    # ------------------------------------------------------------------ progress
    def track(self, job_id: str, live: LiveJob) -> None:
        """Keep the member's progress message up to date as the job moves (throttled by the service)."""
        self.live[job_id] = live

        async def on_update(update: JobUpdate) -> None:
            await live.wait_shown()
            if update.phase == Phase.DONE:
                return
            view = self.progress_view(job_id) if update.phase in (Phase.QUEUED, Phase.RUNNING) else None
            shown = False
            try:
                if live.interaction is not None and interaction_alive(live.interaction):
                    await live.interaction.edit_original_response(content=render_update(update), view=view)
                    shown = True
                elif live.progress_message is not None:
                    await live.progress_message.edit(content=render_update(update), view=view)
                    shown = True
            except discord.HTTPException as exc:
                log.debug("progress edit for %s failed: %s", job_id, exc.status)
            if update.phase in (Phase.FAILED, Phase.CANCELLED):
                self.live.pop(job_id, None)
                if not shown and update.phase == Phase.FAILED:
                    # The private message can no longer be edited: say it in the channel rather than not at all.
                    job = await self.service.job(job_id)
                    await self.notify_failure(job, update.message)

        self.service.subscribe(job_id, on_update)

    # ------------------------------------------------------------------ delivery
    async def deliver(self, delivery: Delivery) -> list[int]:
        try:
            return await self._deliver(delivery)
        except discord.Forbidden as exc:
            raise DeliveryError(
                "jamgen may not post here (it needs Send Messages, Attach Files and Embed Links).", retriable=False
            ) from exc
        except discord.NotFound as exc:
            raise DeliveryError("the channel or message to reply to is gone.", retriable=False) from exc
        except discord.HTTPException as exc:
            raise DeliveryError(
                f"Discord refused the upload ({exc.status}).", retriable=exc.status >= 500 or exc.status == 429
            ) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise DeliveryError("Discord could not be reached.", retriable=True) from exc

    async def _deliver(self, delivery: Delivery) -> list[int]:
        job = delivery.job
        live = self.live.get(job.id)
        if live is not None:
            await live.wait_shown()
        # A personal job's channel is not jamgen's to read: no history scan (a retry may post it twice).
        found = await self._find_posted(job) if delivery.retry and not is_personal(job) else None
        if found is not None:
            log.info("job %s: an earlier try already posted it (message %s); not posting again", job.id, found.id)
            posted = [found]
        elif job.mode == Mode.STEMS:
            posted = await self._post_stems(delivery, live)
        else:
            posted = [await self._post_take(delivery, live)]
        await self._resolve_progress(job, live, posted[0])
        self.live.pop(job.id, None)
        return [message.id for message in posted]

    async def _post_take(self, delivery: Delivery, live: LiveJob | None) -> discord.Message:
        job = delivery.job
        parent_url = await self._parent_url(job)
        v2 = self.card_style == "v2"
        kwargs: dict[str, Any] = {
            "content": header_text(job.user_id, job.takes),
            "view": self.result_view(job, len(delivery.takes)),
        }
        if not v2:
            kwargs["embeds"] = result_embeds(delivery, parent_url)
        # Hooks see the same kwargs in both styles; a take card carries the (hooked) content in its first text.
        for hook in self.hooks:
            await hook(delivery, kwargs)
        if v2:
            kwargs["view"] = take_card(delivery, parent_url, kwargs.pop("content") or "", kwargs["view"])
        return await self._send(job, live, lambda: result_files(delivery), kwargs)

    async def _post_stems(self, delivery: Delivery, live: LiveJob | None) -> list[discord.Message]:
        """The stems, as many to a message as the upload limit allowed (the first with their picture)."""
        job = delivery.job
        groups = stem_messages(delivery)
        posted = []
        for part, stems in enumerate(groups):
            kwargs: dict[str, Any] = {
                "content": f"<@{job.user_id}> here are your stems." if part == 0 else None,
                "embeds": [stems_embed(delivery, stems, part, len(groups))],
            }
            if self.stems_view is not None:
                kwargs["view"] = self.stems_view(job.id, stems)
            files = partial(stems_files, stems, with_picture=part == 0)
            posted.append(await self._send(job, live, files, kwargs))
        return posted

    async def _send(
        self, job: Job, live: LiveJob | None, files: Callable[[], list[discord.File]], kwargs: dict[str, Any]
    ) -> discord.Message:
        """Post in the job's channel; where the bot may not, as a followup while the member's interaction lives."""
        if is_personal(job):
            return await self._send_personal(job, live, files, kwargs)
        try:
            return await asyncio.wait_for(self._post_in_channel(job, files=files(), **kwargs), self.upload_timeout_s)
        except (discord.Forbidden, discord.NotFound) as exc:
            if live is None or live.interaction is None or not interaction_alive(live.interaction):
                raise
            # The channel is closed to the bot but the member's interaction still answers: a followup
            # (replies to it cannot carry words without the intent, but the member gets the take).
            log.info("job %s: cannot post in the channel (%s); delivering as a followup", job.id, exc.status)
        return await asyncio.wait_for(
            live.interaction.followup.send(files=files(), allowed_mentions=owner_only(job), wait=True, **kwargs),
            self.upload_timeout_s,
        )

    async def _resolve_progress(self, job: Job, live: LiveJob | None, posted: discord.Message) -> None:
        """The member's progress message, private or public, now points to (or gives way to) the take."""
        if live is not None and live.interaction is not None and interaction_alive(live.interaction):
            # A personal job's server is the interaction's (the job has none); a DM's link is "@me".
            personal_guild = live.interaction.guild_id if posted.channel.id == live.interaction.channel_id else None
            guild_id = personal_guild if is_personal(job) else job.guild_id
            with contextlib.suppress(discord.HTTPException):
                await live.interaction.edit_original_response(
                    # Followup messages come back without their guild, so their own jump_url says "@me".
                    content=f"✅ `{job.id}` is ready: {message_url(guild_id, posted.channel.id, posted.id)}",
                    view=None,
                )
        elif live is not None and live.progress_message is not None:
            with contextlib.suppress(discord.HTTPException):
                await live.progress_message.delete()
        elif live is None:
            await self._delete_stored_progress(job)

    async def _delete_stored_progress(self, job: Job) -> None:
        """After a restart, the public progress reply of a reply-to-remix job would stay "Queued" forever."""
        if job.progress_message_id is None or job.interaction_id is not None or job.channel_id is None:
            return  # an interaction's private progress can only be edited with its token, gone with the process
        channel = self.client.get_partial_messageable(job.channel_id)
        try:
            await channel.get_partial_message(job.progress_message_id).delete()
        except discord.HTTPException as exc:
            log.info("job %s: could not remove its progress message: %s", job.id, exc.status)

    async def notify_failure(self, job: Job, message: str) -> None:
        live = self.live.pop(job.id, None)
        personal_room = live is None or not live.personal or live.followups < PERSONAL_FOLLOWUPS
        if live and live.interaction and interaction_alive(live.interaction) and personal_room:
            with contextlib.suppress(discord.HTTPException):
                live.followups += 1
                await live.interaction.followup.send(f"⚠️ `{job.id}`: {message}", ephemeral=True)
                return
        if is_personal(job):
            # Never the channel: by DM, or (DMs closed) only the log.
            try:
                await self._send_dm(job, content=f"⚠️ `{job.id}`: {message}")
            except discord.HTTPException as exc:
                log.info("job %s: could not tell its member by DM: %s", job.id, exc.status)
            return
        if live is None:
            await self._delete_stored_progress(job)
        await self._post_in_channel(job, content=f"<@{job.user_id}> ⚠️ `{job.id}`: {message}")

    async def _send_personal(
        self, job: Job, live: LiveJob | None, files: Callable[[], list[discord.File]], kwargs: dict[str, Any]
    ) -> discord.Message:
        """A personal job's take: a followup while the interaction lives and has followups left, else by DM."""
        interaction = live.interaction if live is not None else None
        if (
            live is not None
            and interaction is not None
            and not live.by_dm
            and live.followups < PERSONAL_FOLLOWUPS
            and interaction_alive(interaction, self.token_lifetime)
        ):
            live.followups += 1
            try:
                return await asyncio.wait_for(
                    interaction.followup.send(files=files(), allowed_mentions=owner_only(job), wait=True, **kwargs),
                    self.upload_timeout_s,
                )
            except discord.HTTPException as exc:
                if exc.status not in (401, 404):
                    raise
                # The token died (or its message is gone) after all: the DM still reaches the member.
                log.info("job %s: its interaction no longer answers (%s); delivering by DM", job.id, exc.status)
                live.by_dm = True
        try:
            return await asyncio.wait_for(self._send_dm(job, files=files(), **kwargs), self.upload_timeout_s)
        except discord.Forbidden as exc:
            # 50007: the member does not accept DMs from jamgen; nothing else can reach them here.
            raise DeliveryError(
                "your DMs are closed to jamgen, so it could not send you the take. Allow direct messages from "
                "server members or apps, then ask again.",
                retriable=False,
            ) from exc

    async def _send_dm(self, job: Job, **kwargs: Any) -> discord.Message:
        """A message to the job's member in their DM with jamgen (Create DM, then post)."""
        dm = await self.client.create_dm(discord.Object(job.user_id))
        return await dm.send(allowed_mentions=owner_only(job), **kwargs)

    async def _channel(self, channel_id: int) -> discord.abc.Messageable:
        channel = self.client.get_channel(channel_id) or await self.client.fetch_channel(channel_id)
        assert isinstance(channel, discord.abc.Messageable)
        return channel

    async def _post_in_channel(self, job: Job, **kwargs: Any) -> discord.Message:
        if job.channel_id is None:
            raise RuntimeError(f"job {job.id} has no channel to deliver to")
        channel = await self._channel(job.channel_id)
        # Reply to the member's own message (reply-to-remix); an interaction's private progress can't be replied to.
        if job.reply_to_message_id:
            kwargs["reference"] = discord.MessageReference(
                message_id=job.reply_to_message_id, channel_id=job.channel_id, fail_if_not_exists=False
            )
        return await channel.send(allowed_mentions=owner_only(job), **kwargs)

    async def _find_posted(self, job: Job) -> discord.Message | None:
        """The message an earlier try posted for ``job`` (jamgen's, with files, its footer naming the job)."""
        me = self.client.user
        if job.channel_id is None or me is None:
            return None
        channel = await self._channel(job.channel_id)
        since = discord.Object(discord.utils.time_snowflake(job.created_at - dt.timedelta(minutes=1)))
        try:
            async for message in channel.history(limit=HISTORY_SCAN_LIMIT, after=since):
                mine = message.author.id == me.id and message.attachments
                if mine and job_id_of(message) == job.id:
                    return message
        except discord.Forbidden:
            log.warning("job %s: cannot read the channel's history to look for an earlier post", job.id)
        return None

    async def _parent_url(self, job: Job) -> str | None:
        if not job.parent_id:
            return None
        parent = await self.service.store.get_job(job.parent_id)
        if parent is None or not parent.delivered_message_ids:
            return None
        return message_url(parent.guild_id, parent.channel_id, parent.delivered_message_ids[0])
