"""REST routes of guilds: the guild, its channels, roles and members."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakediscord.responses import json_response
from tests.fakediscord.rest_common import RouteBase
from tests.fakediscord.rules import DiscordError


class GuildRoutes(RouteBase):
    """Route handlers: guild, channels, roles, members."""

    def _guild(self, request: web.Request) -> Any:
        guild = self.fake.guilds.get(int(request.match_info["guild_id"]))
        if guild is None:
            raise DiscordError(404, 10004, "Unknown Guild")
        return guild

    async def get_guild(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        body = guild.payload()
        for key in ("channels", "threads", "members", "voice_states", "presences"):
            body.pop(key, None)
        body["approximate_member_count"] = len(guild.members)
        return json_response(body)

    async def guild_channels(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        return json_response([channel.payload() for channel in guild.text_channels()])

    async def guild_roles(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        return json_response([role.payload() for role in guild.roles.values()])

    async def guild_member(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        member = guild.members.get(int(request.match_info["user_id"]))
        if member is None:
            raise DiscordError(404, 10007, "Unknown Member")
        return json_response(member.payload())
