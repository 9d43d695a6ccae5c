"""REST routes of threads: starting one (from a message or not) and its members."""

from __future__ import annotations

from aiohttp import web

from tests.fakediscord import guards, threads
from tests.fakediscord.records import HAS_THREAD
from tests.fakediscord.responses import json_response
from tests.fakediscord.rest_common import RouteBase, read_body
from tests.fakediscord.rules import THREAD_ALREADY_EXISTS, DiscordError


class ThreadRoutes(RouteBase):
    """Route handlers: start thread, add/remove thread members."""

    async def start_thread(self, request: web.Request) -> web.Response:
        fake = self.fake
        parent = self._channel(request)
        body, _ = await read_body(request)
        if parent.is_thread:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        message_id = request.match_info.get("message_id")
        if message_id is not None:
            message = self._message_in(parent, int(message_id))
            if message.thread_id is not None:
                raise DiscordError(400, THREAD_ALREADY_EXISTS, "A thread has already been created for this message")
        thread_type = threads.validate_new_thread(body, from_message=message_id is not None)
        guards.start_thread(fake, parent, thread_type, from_message=message_id is not None)
        guild = fake.guild_of(parent)
        thread = guild.add_thread(
            parent,
            str(body["name"]),
            owner_id=fake.bot_user.id,
            thread_id=int(message_id) if message_id is not None else None,
            private=thread_type == 12,
            auto_archive_duration=int(body.get("auto_archive_duration") or 1440),
        )
        if thread.type == 12 and body.get("invitable") is not None:
            thread.invitable = bool(body["invitable"])
        if message_id is not None:
            message = fake.messages[int(message_id)]
            message.thread_id = thread.id
            message.flags |= HAS_THREAD
        fake.notify()
        payload = thread.payload()
        payload["member"] = {
            "id": str(thread.id),
            "user_id": str(fake.bot_user.id),
            "join_timestamp": thread.created_timestamp,
            "flags": 0,
        }
        return json_response(payload, status=201)

    async def thread_member(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if not channel.is_thread:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        user_ref = request.match_info["user_id"]
        user_id = self.fake.bot_user.id if user_ref == "@me" else int(user_ref)
        guards.thread_member(self.fake, channel, user_id, adding=request.method == "PUT")
        if request.method == "PUT":
            channel.member_ids.add(user_id)
        else:
            channel.member_ids.discard(user_id)
        self.fake.notify()
        return self._no_content()
