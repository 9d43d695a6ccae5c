"""REST routes of the gateway URL, users, the application and its application commands."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakediscord import commands_rules
from tests.fakediscord.responses import json_response
from tests.fakediscord.rest_common import RouteBase, read_body, read_body_list
from tests.fakediscord.rules import UNKNOWN_APPLICATION_COMMAND, DiscordError, FormErrors


class ApplicationRoutes(RouteBase):
    """Route handlers: gateway URL, users, the application, application commands."""

    # ---- gateway, users, application -----------------------------------------------------------

    async def get_gateway(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = {"url": self.fake.gateway_url}
        if request.path.endswith("/bot"):
            body.update(
                shards=1,
                session_start_limit={"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1},
            )
        return json_response(body)

    async def get_me(self, request: web.Request) -> web.Response:
        body = self.fake.bot_user.payload()
        body.update(verified=True, mfa_enabled=False, email=None, locale="en-US")
        return json_response(body)

    async def get_user(self, request: web.Request) -> web.Response:
        user = self.fake.user_for(int(request.match_info["user_id"]))
        if user is None:
            raise DiscordError(404, 10013, "Unknown User")
        return json_response(user.payload())

    async def get_application(self, request: web.Request) -> web.Response:
        owner = self.fake.app_owner or self.fake.bot_user
        return json_response(
            {
                "id": str(self.fake.application_id),
                "name": self.fake.bot_user.username,
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "owner": owner.payload(),
                "team": None,
                "flags": 0,
                "tags": [],
                "bot": self.fake.bot_user.payload(),
                "approximate_guild_count": len(self.fake.guilds),
                "approximate_user_install_count": 0,
                "approximate_user_authorization_count": 0,
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "role_connections_verification_url": None,
                "flags_new": "0",
                "explicit_content_filter": 0,
                "eligible_oauth2_scopes": ["applications.commands", "bot"],
            }
        )

    # ---- application commands ------------------------------------------------------------------

    def _registry(self, request: web.Request) -> tuple[dict[int, dict[str, Any]], int | None]:
        if int(request.match_info["app_id"]) != self.fake.application_id:
            raise DiscordError(403, 50001, "Missing Access")
        guild_id = request.match_info.get("guild_id")
        if guild_id is None:
            return self.fake.global_commands, None
        if int(guild_id) not in self.fake.guilds:
            raise DiscordError(403, 50001, "Missing Access")
        return self.fake.guild_commands.setdefault(int(guild_id), {}), int(guild_id)

    def _echo_command(self, command: dict[str, Any], guild_id: int | None, command_id: int | None) -> dict[str, Any]:
        return self.fake.echo_command(command, guild_id, command_id)

    @staticmethod
    def _same_command(registry: dict[int, dict[str, Any]], command: dict[str, Any]) -> int | None:
        for command_id, existing in registry.items():
            if existing["name"] == command.get("name") and existing.get("type", 1) == command.get("type", 1):
                return command_id
        return None

    async def bulk_overwrite_commands(self, request: web.Request) -> web.Response:
        registry, guild_id = self._registry(request)
        commands, _ = await read_body_list(request)
        commands_rules.validate_command_list(commands)
        self.fake.replace_commands(commands, guild_id)
        return json_response(list(registry.values()))

    async def list_commands(self, request: web.Request) -> web.Response:
        registry, _ = self._registry(request)
        return json_response(list(registry.values()))

    async def upsert_command(self, request: web.Request) -> web.Response:
        registry, guild_id = self._registry(request)
        command, _ = await read_body(request)
        errors = FormErrors()
        commands_rules.validate_command(errors, [], command)
        errors.raise_if_any()
        existing = self._same_command(registry, command)
        commands_rules.check_room_for(registry, command, replacing=existing is not None)
        echoed = self._echo_command(command, guild_id, existing)
        registry[int(echoed["id"])] = echoed
        self.fake.notify()
        return json_response(echoed, status=200 if existing else 201)

    def _command(self, request: web.Request) -> tuple[dict[int, dict[str, Any]], int]:
        registry, _ = self._registry(request)
        command_id = int(request.match_info["command_id"])
        if command_id not in registry:
            raise DiscordError(404, UNKNOWN_APPLICATION_COMMAND, "Unknown application command")
        return registry, command_id

    async def get_command(self, request: web.Request) -> web.Response:
        registry, command_id = self._command(request)
        return json_response(registry[command_id])

    async def edit_command(self, request: web.Request) -> web.Response:
        registry, command_id = self._command(request)
        changes, _ = await read_body(request)
        errors = FormErrors()
        commands_rules.validate_command(errors, [], {**registry[command_id], **changes})
        errors.raise_if_any()
        registry[command_id].update(changes)
        self.fake.notify()
        return json_response(registry[command_id])

    async def delete_command(self, request: web.Request) -> web.Response:
        registry, command_id = self._command(request)
        del registry[command_id]
        self.fake.notify()
        return self._no_content()
