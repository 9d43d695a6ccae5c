"""REST routes of polls (resources/poll.mdx "Poll Endpoints"): End Poll and Get Answer Voters."""

from __future__ import annotations

from aiohttp import web

from tests.fakediscord import guards
from tests.fakediscord.polls import CANNOT_EDIT_OTHERS_MESSAGE, CANNOT_EXPIRE_NON_POLL, POLL_EXPIRED
from tests.fakediscord.responses import json_response
from tests.fakediscord.rest_common import RouteBase
from tests.fakediscord.rules import DiscordError, FormErrors


class PollRoutes(RouteBase):
    """Route handlers: ending a poll, listing an answer's voters."""

    async def end_poll(self, request: web.Request) -> web.Response:
        fake = self.fake
        channel = self._channel(request)
        guards.view(fake, channel)
        message = self._message_in(channel, int(request.match_info["message_id"]))
        poll = fake.polls.get(message.id)
        if poll is None:
            raise DiscordError(400, CANNOT_EXPIRE_NON_POLL, "Cannot expire a non-poll message")
        # docs: resources/poll.mdx "End Poll": "You cannot end polls from other users."
        if poll.author_id != fake.bot_user.id:
            raise DiscordError(403, CANNOT_EDIT_OTHERS_MESSAGE, "Cannot edit a message authored by another user")
        if poll.finalized or poll.expiry <= fake.clock.utcnow():
            raise DiscordError(400, POLL_EXPIRED, "Poll expired")
        poll.expiry = fake.clock.utcnow()
        # docs: "Returns a message object. Fires a Message Update Gateway event."
        await fake.finalize_poll(poll)
        return self._ok(message)

    async def answer_voters(self, request: web.Request) -> web.Response:
        fake = self.fake
        channel = self._channel(request)
        guards.read_message(fake, channel)
        message = self._message_in(channel, int(request.match_info["message_id"]))
        poll = fake.polls.get(message.id)
        if poll is None:
            raise DiscordError(404, 10008, "Unknown Message")
        answer_id = int(request.match_info["answer_id"])
        errors = FormErrors()
        limit = int(request.query.get("limit", 25))
        if not 1 <= limit <= 100:  # docs: "Max number of users to return (1-100)", default 25
            errors.add(["limit"], "NUMBER_TYPE_MAX" if limit > 100 else "NUMBER_TYPE_MIN", "limit must be 1-100")
        if not 1 <= answer_id <= len(poll.answers):
            errors.add(["answer_id"], "NUMBER_TYPE_MAX", "Unknown answer")
        errors.raise_if_any()
        after = int(request.query.get("after", 0) or 0)
        voters = sorted(uid for uid in poll.votes.get(answer_id, []) if uid > after)[:limit]
        return json_response({"users": [fake.users[uid].payload() for uid in voters]})
