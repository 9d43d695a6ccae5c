"""REST routes of channels and their messages, DMs, pins and reactions."""

from __future__ import annotations

from aiohttp import web

from tests.fakediscord import guards, interactions
from tests.fakediscord.limits import upload_limit
from tests.fakediscord.model import FakeChannel, iso
from tests.fakediscord.permissions import apply_overwrites
from tests.fakediscord.records import FakeMessage
from tests.fakediscord.responses import json_response
from tests.fakediscord.rest_common import SENDABLE_FLAGS, RouteBase, read_body
from tests.fakediscord.rules import CANNOT_EDIT_OTHERS_MESSAGE, DiscordError, validate_message


class ChannelRoutes(RouteBase):
    """Route handlers: channels, DMs, messages, typing, pins and reactions."""

    # ---- channels and messages -----------------------------------------------------------------

    async def get_channel(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        guards.view(self.fake, channel)
        return json_response(channel.payload())

    async def edit_channel(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        changes, _ = await read_body(request)
        guards.edit_channel(self.fake, channel, changes)
        apply_overwrites(channel, changes)
        if "name" in changes:
            channel.name = changes["name"]
        if "topic" in changes and not channel.is_thread:
            channel.topic = changes["topic"]
        if channel.is_thread:
            for key in ("archived", "locked", "invitable", "auto_archive_duration"):
                if key in changes and changes[key] is not None:
                    setattr(channel, key, changes[key])
            if "archived" in changes:
                channel.archive_timestamp = iso(self.fake.clock.utcnow())
        event = "THREAD_UPDATE" if channel.is_thread else "CHANNEL_UPDATE"
        await self.fake.gateway.dispatch(event, channel.payload())
        self.fake.notify()
        return json_response(channel.payload())

    async def delete_channel(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        guards.delete_channel(self.fake, channel)
        guild = self.fake.guild_of(channel)
        del guild.channels[channel.id]
        event = "THREAD_DELETE" if channel.is_thread else "CHANNEL_DELETE"
        await self.fake.gateway.dispatch(event, channel.payload())
        self.fake.notify()
        return json_response(channel.payload())

    async def create_dm(self, request: web.Request) -> web.Response:
        body, _ = await read_body(request)
        user = self.fake.user_for(int(body.get("recipient_id") or 0))
        if user is None:
            raise DiscordError(404, 10013, "Unknown User")
        return json_response(self.fake.dms.open(user).payload())

    async def create_message(self, request: web.Request) -> web.Response:
        fake = self.fake
        dm = fake.dms.get(int(request.match_info["channel_id"]))
        if dm is not None:
            payload, files = await read_body(request)
            return self._ok(await fake.dms.send(dm, payload, files))
        channel = self._channel(request)
        payload, files = await read_body(request)
        validate_message(payload, fake.limits, creating=True, file_count=len(files))
        payload = guards.same_channel_reply(fake, channel, payload)
        payload = await guards.create_message(fake, channel, payload, len(files))
        reference = fake.resolve_reference(payload, channel)
        attachments = (
            fake.build_attachments(
                payload, files, channel_id=channel.id, size_limit=upload_limit(fake, fake.guild_of(channel))
            )
            or []
        )
        poll_message_id = fake.prepare_poll(channel, payload)  # polls.py: validated, kept under this id
        message = await fake.store_message(
            channel=channel,
            author=fake.bot_user,
            payload=payload,
            attachments=attachments,
            source="channel",
            flags=int(payload.get("flags") or 0) & SENDABLE_FLAGS,
            reference=reference,
            message_id=poll_message_id,
        )
        return self._ok(message)

    async def get_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        guards.read_message(self.fake, channel)
        return self._ok(self._message_in(channel, int(request.match_info["message_id"])))

    async def list_messages(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        limit, readable = guards.list_messages(self.fake, channel, request.query)
        if not readable:
            return json_response([])
        before = int(request.query.get("before", 0) or 0)
        after = int(request.query.get("after", 0) or 0)
        found = [
            m
            for m in self.fake.messages.values()
            if m.channel_id == channel.id
            and not m.deleted
            and not m.ephemeral
            and (not before or m.id < before)
            and (not after or m.id > after)
        ]
        found.sort(key=lambda m: m.id, reverse=True)
        if after and not before:
            found = found[-limit:]
        return json_response([self.fake.bot_view(m) for m in found[:limit]])

    async def edit_message(self, request: web.Request) -> web.Response:
        fake = self.fake
        channel = self._channel(request)
        message = self._message_in(channel, int(request.match_info["message_id"]))
        payload, files = await read_body(request)
        if message.author.id != fake.bot_user.id and set(payload) - {"flags"}:
            raise DiscordError(403, CANNOT_EDIT_OTHERS_MESSAGE, "Cannot edit a message authored by another user")
        guards.edit_message(fake, channel, message)
        fake.check_poll_edit(message)
        validate_message(
            interactions.as_validated(message, payload), fake.limits, creating=False, file_count=len(files)
        )
        interactions.check_edit_flags(message, payload)
        attachments = fake.build_attachments(
            payload,
            files,
            channel_id=channel.id,
            existing=message.attachments,
            size_limit=upload_limit(fake, fake.guild_of(channel)),
        )
        await fake.edit_message(message, payload, attachments)
        return self._ok(message)

    async def delete_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._message_in(channel, int(request.match_info["message_id"]))
        guards.delete_message(self.fake, channel, message)
        await self.fake.delete_message(message)
        return self._no_content()

    async def typing(self, request: web.Request) -> web.Response:
        guards.view(self.fake, self._channel(request))
        return self._no_content()

    # ---- pins ----------------------------------------------------------------------------------

    async def pin(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._message_in(channel, int(request.match_info["message_id"]))
        guards.pin(self.fake, channel, pinning=request.method == "PUT", pinned_count=len(self._pinned(channel)))
        if message.pinned == (request.method == "PUT"):
            return self._no_content()
        message.pinned = request.method == "PUT"
        now = iso(self.fake.clock.utcnow())
        message.pinned_at = now if message.pinned else None
        await self.fake.gateway.dispatch(
            "CHANNEL_PINS_UPDATE",
            {"guild_id": str(channel.guild_id), "channel_id": str(channel.id), "last_pin_timestamp": now},
        )
        self.fake.notify()
        return self._no_content()

    def _pinned(self, channel: FakeChannel) -> list[FakeMessage]:
        found = [m for m in self.fake.messages.values() if m.channel_id == channel.id and m.pinned and not m.deleted]
        return sorted(found, key=lambda m: m.id, reverse=True)

    async def list_pins_legacy(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        shown = self._pinned(channel)[:50] if guards.history_visible(self.fake, channel) else []
        return json_response([self.fake.bot_view(m) for m in shown])

    async def list_pins(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        shown = self._pinned(channel) if guards.history_visible(self.fake, channel) else []
        limit = guards.pin_page_limit(request.query)
        items = [{"pinned_at": m.pinned_at or m.timestamp, "message": self.fake.bot_view(m)} for m in shown[:limit]]
        return json_response({"items": items, "has_more": len(shown) > limit})

    # ---- reactions -----------------------------------------------------------------------------

    async def own_or_user_reaction(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._message_in(channel, int(request.match_info["message_id"]))
        user_ref = request.match_info["user_id"]
        user = self.fake.bot_user if user_ref == "@me" else self.fake.user_for(int(user_ref))
        if user is None:
            raise DiscordError(404, 10013, "Unknown User")
        if request.method == "PUT" and user is not self.fake.bot_user:
            raise DiscordError(405, 0, "405: Method Not Allowed")
        if request.method == "PUT":
            guards.react(self.fake, channel, message, request.match_info["emoji"])
        else:
            guards.unreact(self.fake, channel, others=user is not self.fake.bot_user)
        await self.fake.set_reaction(message, request.match_info["emoji"], user, add=request.method == "PUT")
        return self._no_content()

    async def reaction_users(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._message_in(channel, int(request.match_info["message_id"]))
        guards.view(self.fake, channel)
        user_ids = message.reactions.get(request.match_info["emoji"], [])
        users = [self.fake.users[user_id].payload() for user_id in user_ids if user_id in self.fake.users]
        return json_response(users)

    async def clear_reactions(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._message_in(channel, int(request.match_info["message_id"]))
        guards.unreact(self.fake, channel, others=True)
        emoji = request.match_info.get("emoji")
        if emoji is None:
            message.reactions.clear()
        else:
            message.reactions.pop(emoji, None)
        self.fake.notify()
        return self._no_content()
