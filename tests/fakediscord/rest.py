"""The fake's REST routes (API v10 subset) and CDN; state lives in :class:`FakeDiscord`.

The handlers are grouped by resource: rest_application.py (gateway URL, users, application, commands),
rest_interactions.py (callbacks, webhooks), rest_channels.py (channels, DMs, messages, pins, reactions),
rest_threads.py, rest_guilds.py; what they share is in rest_common.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from tests.fakediscord.responses import API_PREFIX
from tests.fakediscord.rest_application import ApplicationRoutes
from tests.fakediscord.rest_channels import ChannelRoutes
from tests.fakediscord.rest_guilds import GuildRoutes
from tests.fakediscord.rest_interactions import InteractionRoutes
from tests.fakediscord.rest_polls import PollRoutes
from tests.fakediscord.rest_threads import ThreadRoutes

if TYPE_CHECKING:
    from tests.fakediscord.server import FakeDiscord


class RestApi(ApplicationRoutes, InteractionRoutes, ChannelRoutes, ThreadRoutes, GuildRoutes, PollRoutes):
    """Route handlers bound to one fake (each group of routes is in its rest_*.py module).

    Args:
        fake: the fake Discord.
    """

    # ---- CDN -----------------------------------------------------------------------------------

    async def cdn(self, request: web.Request) -> web.Response:
        attachment = self.fake.cdn.get(int(request.match_info["attachment_id"]))
        if attachment is None or str(attachment.id) != request.match_info["attachment_id"]:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=attachment.data, headers={"Content-Type": attachment.content_type})


def add_routes(app: web.Application, fake: FakeDiscord) -> None:
    """Register every route on the app.

    Args:
        app: the aiohttp application.
        fake: the fake Discord.
    """
    api = RestApi(fake)
    r = app.router
    p = API_PREFIX
    snowflake = r"{%s:\d+}"
    cid = snowflake % "channel_id"
    mid = snowflake % "message_id"
    r.add_get(f"{p}/gateway", api.get_gateway)
    r.add_get(f"{p}/gateway/bot", api.get_gateway)
    r.add_get(f"{p}/users/@me", api.get_me)
    r.add_post(f"{p}/users/@me/channels", api.create_dm)
    r.add_get(f"{p}/users/{snowflake % 'user_id'}", api.get_user)
    r.add_get(f"{p}/oauth2/applications/@me", api.get_application)
    r.add_get(f"{p}/applications/@me", api.get_application)
    for base in (f"{p}/applications/{{app_id}}/commands", f"{p}/applications/{{app_id}}/guilds/{{guild_id}}/commands"):
        r.add_put(base, api.bulk_overwrite_commands)
        r.add_get(base, api.list_commands)
        r.add_post(base, api.upsert_command)
        r.add_get(base + "/{command_id}", api.get_command)
        r.add_patch(base + "/{command_id}", api.edit_command)
        r.add_delete(base + "/{command_id}", api.delete_command)
    r.add_post(f"{p}/interactions/{{interaction_id}}/{{token}}/callback", api.interaction_callback)
    r.add_post(f"{p}/webhooks/{{app_id}}/{{token}}", api.create_followup)
    webhook_message = f"{p}/webhooks/{{app_id}}/{{token}}/messages/{{message_id}}"
    r.add_get(webhook_message, api.get_webhook_message)
    r.add_patch(webhook_message, api.edit_webhook_message)
    r.add_delete(webhook_message, api.delete_webhook_message)
    channel = f"{p}/channels/{cid}"
    r.add_get(channel, api.get_channel)
    r.add_patch(channel, api.edit_channel)
    r.add_delete(channel, api.delete_channel)
    r.add_post(f"{channel}/typing", api.typing)
    r.add_get(f"{channel}/pins", api.list_pins_legacy)
    r.add_get(f"{channel}/messages/pins", api.list_pins)
    for pin_path in (f"{channel}/pins/{mid}", f"{channel}/messages/pins/{mid}"):
        r.add_put(pin_path, api.pin)
        r.add_delete(pin_path, api.pin)
    r.add_post(f"{channel}/threads", api.start_thread)
    r.add_put(f"{channel}/thread-members/{{user_id}}", api.thread_member)
    r.add_delete(f"{channel}/thread-members/{{user_id}}", api.thread_member)
    r.add_get(f"{channel}/messages", api.list_messages)
    r.add_post(f"{channel}/messages", api.create_message)
    r.add_get(f"{channel}/messages/{mid}", api.get_message)
    r.add_patch(f"{channel}/messages/{mid}", api.edit_message)
    r.add_delete(f"{channel}/messages/{mid}", api.delete_message)
    r.add_post(f"{channel}/messages/{mid}/threads", api.start_thread)
    reactions = f"{channel}/messages/{mid}/reactions"
    r.add_delete(reactions, api.clear_reactions)
    r.add_get(reactions + "/{emoji}", api.reaction_users)
    r.add_delete(reactions + "/{emoji}", api.clear_reactions)
    r.add_put(reactions + "/{emoji}/{user_id}", api.own_or_user_reaction)
    r.add_delete(reactions + "/{emoji}/{user_id}", api.own_or_user_reaction)
    r.add_post(f"{channel}/polls/{mid}/expire", api.end_poll)
    r.add_get(f"{channel}/polls/{mid}/answers/{snowflake % 'answer_id'}", api.answer_voters)
    guild = f"{p}/guilds/{snowflake % 'guild_id'}"
    r.add_get(guild, api.get_guild)
    r.add_get(f"{guild}/channels", api.guild_channels)
    r.add_get(f"{guild}/roles", api.guild_roles)
    r.add_get(f"{guild}/members/{snowflake % 'user_id'}", api.guild_member)
    r.add_get("/cdn/attachments/{channel_id}/{attachment_id}/{filename}", api.cdn)
