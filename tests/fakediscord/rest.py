"""The fake's REST routes (API v10 subset) and CDN; state lives in :class:`FakeDiscord`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web

from tests.fakediscord import commands_rules, guards, interactions, threads
from tests.fakediscord.limits import upload_limit
from tests.fakediscord.model import FakeChannel, iso
from tests.fakediscord.permissions import MANAGE_THREADS, apply_overwrites
from tests.fakediscord.records import (
    AUTOCOMPLETE,
    AUTOCOMPLETE_RESULT,
    CHANNEL_MESSAGE,
    COMPONENTS_V2,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE_MESSAGE,
    EPHEMERAL,
    HAS_THREAD,
    LOADING,
    MESSAGE_COMPONENT,
    MODAL,
    MODAL_SUBMIT,
    UPDATE_MESSAGE,
    CallbackRecord,
    FakeInteraction,
    FakeMessage,
    WebhookCall,
)
from tests.fakediscord.rules import (
    CANNOT_EDIT_OTHERS_MESSAGE,
    INTERACTION_ALREADY_ACKNOWLEDGED,
    INVALID_WEBHOOK_TOKEN,
    THREAD_ALREADY_EXISTS,
    UNKNOWN_APPLICATION_COMMAND,
    UNKNOWN_CHANNEL,
    UNKNOWN_INTERACTION,
    UNKNOWN_MESSAGE,
    UNKNOWN_WEBHOOK,
    DiscordError,
    FormErrors,
    validate_choices,
    validate_message,
    validate_modal,
)
from tests.fakediscord.server import (
    API_PREFIX,
    CHAT_INPUT_COMMAND,
    CONTEXT_MENU_COMMAND,
    DEFAULT_MESSAGE,
    INTERACTION_ID,
    json_response,
)

if TYPE_CHECKING:
    from tests.fakediscord.server import FakeDiscord

Files = dict[int, tuple[str, bytes]]
COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")
# Flags a bot may set on messages it sends: SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS, IS_VOICE_MESSAGE, IS_COMPONENTS_V2.
SENDABLE_FLAGS = 4 | 4096 | 8192 | COMPONENTS_V2


async def read_body(request: web.Request) -> tuple[dict[str, Any], Files]:
    """The JSON payload and the uploaded files (``payload_json`` + ``files[n]`` multipart, or plain JSON).

    Args:
        request: the request.
    """
    files: Files = {}
    if request.content_type.startswith("multipart/"):
        payload: dict[str, Any] = {}
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            name = part.name or ""
            if name == "payload_json":
                payload = json.loads(await part.text())
            elif name.startswith("files[") and name.endswith("]"):
                files[int(name[6:-1])] = (part.filename or "file", bytes(await part.read(decode=False)))
            elif name == "file":
                files[len(files)] = (part.filename or "file", bytes(await part.read(decode=False)))
        return payload, files
    if not request.body_exists:
        return {}, files
    text = await request.text()
    return (json.loads(text) if text else {}), files


def _message_type_for(interaction: FakeInteraction) -> int:
    if interaction.type == 2:
        return CHAT_INPUT_COMMAND if interaction.data.get("type", 1) == 1 else CONTEXT_MENU_COMMAND
    return DEFAULT_MESSAGE


class RestApi:
    """Route handlers bound to one fake.

    Args:
        fake: the fake Discord.
    """

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake

    # ---- helpers -------------------------------------------------------------------------------

    def _channel(self, request: web.Request) -> FakeChannel:
        channel = self.fake.find_channel(int(request.match_info["channel_id"]))
        if channel is None:
            raise DiscordError(404, UNKNOWN_CHANNEL, "Unknown Channel")
        return channel

    def _message_in(self, channel: FakeChannel, message_id: int) -> FakeMessage:
        message = self.fake.messages.get(message_id)
        if message is None or message.deleted or message.channel_id != channel.id or message.ephemeral:
            raise DiscordError(404, UNKNOWN_MESSAGE, "Unknown Message")
        return message

    def _ok(self, message: FakeMessage) -> web.Response:
        return json_response(self.fake.bot_view(message))

    @staticmethod
    def _no_content() -> web.Response:
        return web.Response(status=204)

    async def _thread_activity(self, channel: FakeChannel) -> None:
        """A public followup unarchives an archived thread; an archived locked one refuses (50083)."""
        # Interaction responses are not bound by the bot's channel permissions, so only the thread's state counts.
        await threads.before_post(self.fake, channel, MANAGE_THREADS)

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

    # ---- interaction callbacks -----------------------------------------------------------------

    async def interaction_callback(self, request: web.Request) -> web.Response:
        fake = self.fake
        interaction = fake.interactions.get(int(request.match_info["interaction_id"]))
        if interaction is None or interaction.token != request.match_info["token"]:
            raise DiscordError(404, UNKNOWN_INTERACTION, "Unknown interaction")
        request[INTERACTION_ID] = interaction.id
        at = interaction.elapsed()
        payload, files = await read_body(request)
        callback_type = int(payload.get("type") or 0)
        data = payload.get("data") or {}

        def record(status: int, code: int | None = None, attachments: list[Any] | None = None) -> None:
            interaction.callbacks.append(CallbackRecord(callback_type, data, attachments or [], at, status, code))
            fake.notify()

        try:
            if interaction.acked:
                raise DiscordError(400, INTERACTION_ALREADY_ACKNOWLEDGED, "Interaction has already been acknowledged.")
            if at > fake.limits.interaction_ack_deadline:
                raise DiscordError(404, UNKNOWN_INTERACTION, "Unknown interaction")
            self._check_callback_type(interaction, callback_type)
            if callback_type in (CHANNEL_MESSAGE, UPDATE_MESSAGE):
                target = fake.messages.get(interaction.message_id or 0)
                validate_message(
                    interactions.as_validated(target, data) if callback_type == UPDATE_MESSAGE and target else data,
                    fake.limits,
                    prefix=["data"],
                    creating=callback_type == CHANNEL_MESSAGE,
                    file_count=len(files),
                )
            elif callback_type == DEFERRED_CHANNEL_MESSAGE:
                interactions.check_defer_flags(data)
            if callback_type == UPDATE_MESSAGE and interaction.message_id in fake.messages:
                interactions.check_edit_flags(fake.messages[interaction.message_id], data, ("data",))
            if callback_type == MODAL:
                validate_modal(data, fake.limits)
            elif callback_type == AUTOCOMPLETE_RESULT:
                validate_choices(data)
            channel = fake.find_channel(interaction.channel_id)
            assert channel is not None
            message: FakeMessage | None = None
            attachments: list[Any] = []
            if callback_type == CHANNEL_MESSAGE:
                flags = int(data.get("flags") or 0) & (SENDABLE_FLAGS | EPHEMERAL)
                attachments = (
                    fake.build_attachments(
                        data,
                        files,
                        channel_id=channel.id,
                        size_limit=interaction.attachment_size_limit,
                        ephemeral=bool(flags & EPHEMERAL),
                    )
                    or []
                )
                message = await fake.store_message(
                    channel=channel,
                    author=fake.bot_user,
                    payload=data,
                    attachments=attachments,
                    source="interaction",
                    flags=flags,
                    message_type=_message_type_for(interaction),
                    interaction=interaction,
                )
                interaction.original_message_id = message.id
            elif callback_type == DEFERRED_CHANNEL_MESSAGE:
                flags = LOADING | (int(data.get("flags") or 0) & EPHEMERAL)
                message = await fake.store_message(
                    channel=channel,
                    author=fake.bot_user,
                    payload={},
                    attachments=[],
                    source="interaction",
                    flags=flags,
                    message_type=_message_type_for(interaction),
                    interaction=interaction,
                )
                interaction.original_message_id = message.id
            elif callback_type in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE):
                target = fake.messages.get(interaction.message_id or 0)
                if target is None:
                    raise DiscordError(404, UNKNOWN_MESSAGE, "Unknown Message")
                interaction.original_message_id = target.id
                if callback_type == UPDATE_MESSAGE:
                    new_attachments = fake.build_attachments(
                        data,
                        files,
                        channel_id=channel.id,
                        existing=target.attachments,
                        size_limit=interaction.attachment_size_limit,
                        ephemeral=target.ephemeral,
                    )
                    attachments = [a for a in new_attachments or [] if a not in target.attachments]
                    message = await fake.edit_message(target, data, new_attachments)
            interaction.callback_type = callback_type
            record(200, attachments=attachments)
        except DiscordError as error:
            record(error.status, error.code)
            raise
        if request.query.get("with_response") not in ("1", "true", "True"):
            return self._no_content()
        body: dict[str, Any] = {
            "interaction": {
                "id": str(interaction.id),
                "type": interaction.type,
                "response_message_loading": callback_type == DEFERRED_CHANNEL_MESSAGE,
                "response_message_ephemeral": bool(message is not None and message.ephemeral),
            },
            "resource": {"type": callback_type},
        }
        if message is not None:
            body["interaction"]["response_message_id"] = str(message.id)
        if message is not None and callback_type in interactions.RESOURCE_MESSAGE_TYPES:
            body["resource"]["message"] = fake.bot_view(message)
        return json_response(body)

    @staticmethod
    def _check_callback_type(interaction: FakeInteraction, callback_type: int) -> None:
        allowed = {
            2: {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, MODAL},
            MESSAGE_COMPONENT: {
                CHANNEL_MESSAGE,
                DEFERRED_CHANNEL_MESSAGE,
                DEFERRED_UPDATE_MESSAGE,
                UPDATE_MESSAGE,
                MODAL,
            },
            AUTOCOMPLETE: {AUTOCOMPLETE_RESULT},
            MODAL_SUBMIT: {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE},
        }.get(interaction.type, set())
        if callback_type in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE) and interaction.message_id is None:
            allowed = allowed - {DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE}
        if callback_type not in allowed:
            errors = FormErrors()
            errors.add(
                ["type"],
                "INTERACTION_RESPONSE_TYPE_INVALID",
                "Interaction response type is invalid for this interaction",
            )
            errors.raise_if_any()

    # ---- interaction webhooks ------------------------------------------------------------------

    def _webhook_interaction(self, request: web.Request) -> FakeInteraction:
        fake = self.fake
        interaction = fake.interaction_for_token(request.match_info["token"])
        if interaction is None or int(request.match_info["app_id"]) != fake.application_id:
            raise DiscordError(404, UNKNOWN_WEBHOOK, "Unknown Webhook")
        request[INTERACTION_ID] = interaction.id
        return interaction

    def _check_token_alive(self, interaction: FakeInteraction) -> None:
        if self.fake.clock.now() - interaction.created_clock >= self.fake.limits.interaction_token_lifetime:
            raise DiscordError(401, INVALID_WEBHOOK_TOKEN, "Invalid Webhook Token")

    def _webhook_target(self, interaction: FakeInteraction, message_ref: str) -> FakeMessage:
        message_id = interaction.original_message_id if message_ref == "@original" else int(message_ref)
        allowed = {interaction.original_message_id, *interaction.followup_ids}
        message = self.fake.messages.get(message_id or 0)
        if message is None or message.deleted or message_id not in allowed:
            raise DiscordError(404, UNKNOWN_MESSAGE, "Unknown Message")
        return message

    async def _webhook_call(
        self,
        request: web.Request,
        kind: str,
        work: Callable[[FakeInteraction, dict[str, Any], Files], Any],
    ) -> web.Response:
        interaction = self._webhook_interaction(request)
        at = interaction.elapsed()
        message_ref = request.match_info.get("message_id", "")
        payload: dict[str, Any] = {}
        files: Files = {}
        try:
            self._check_token_alive(interaction)
            if request.method in ("POST", "PATCH"):
                payload, files = await read_body(request)
            message, attachments, response = await work(interaction, payload, files)
        except DiscordError as error:
            interaction.webhook_calls.append(
                WebhookCall(kind, None, message_ref, payload, [], at, error.status, error.code)  # type: ignore[arg-type]
            )
            self.fake.notify()
            raise
        interaction.webhook_calls.append(
            WebhookCall(kind, message.id if message else None, message_ref, payload, attachments, at, response.status)  # type: ignore[arg-type]
        )
        self.fake.notify()
        return response

    async def create_followup(self, request: web.Request) -> web.Response:
        fake = self.fake

        async def work(interaction: FakeInteraction, payload: dict[str, Any], files: Files) -> Any:
            if interaction.callback_type not in (
                CHANNEL_MESSAGE,
                DEFERRED_CHANNEL_MESSAGE,
                DEFERRED_UPDATE_MESSAGE,
                UPDATE_MESSAGE,
            ):
                raise DiscordError(404, UNKNOWN_WEBHOOK, "Unknown Webhook")
            validate_message(payload, fake.limits, creating=True, file_count=len(files))
            interactions.refuse_followup_params(request.query, payload)
            channel = fake.find_channel(interaction.channel_id)
            if channel is None:
                raise DiscordError(404, UNKNOWN_CHANNEL, "Unknown Channel")
            original = interaction.original
            first_after_thinking = (
                interaction.callback_type == DEFERRED_CHANNEL_MESSAGE and original is not None and original.loading
            )
            private = (
                original.ephemeral if first_after_thinking and original else int(payload.get("flags") or 0) & EPHEMERAL
            )
            if not private:
                await self._thread_activity(channel)
            if first_after_thinking and original is not None and original.deleted:
                # Someone deleted the "thinking..." message: Discord refuses the webhook from then on.
                raise DiscordError(404, UNKNOWN_MESSAGE, "Unknown Message")
            if first_after_thinking and original is not None:
                # The first followup after a "thinking" deferral becomes that deferred message (and keeps
                # the deferral's ephemeral state), as on Discord.
                attachments = fake.build_attachments(
                    payload,
                    files,
                    channel_id=original.channel_id,
                    existing=[],
                    size_limit=interaction.attachment_size_limit,
                    ephemeral=original.ephemeral,
                )
                message = await fake.edit_message(original, payload, attachments or [])
                message.edited_timestamp = None
                interaction.followup_ids.append(message.id)
                return message, attachments or [], self._maybe_wait(request, message)
            flags = int(payload.get("flags") or 0) & (SENDABLE_FLAGS | EPHEMERAL)
            attachments = (
                fake.build_attachments(
                    payload,
                    files,
                    channel_id=channel.id,
                    size_limit=interaction.attachment_size_limit,
                    ephemeral=bool(flags & EPHEMERAL),
                )
                or []
            )
            message = await fake.store_message(
                channel=channel,
                author=fake.bot_user,
                payload=payload,
                attachments=attachments,
                source="followup",
                flags=flags,
                message_type=_message_type_for(interaction),
                interaction=interaction,
            )
            interaction.followup_ids.append(message.id)
            return message, attachments, self._maybe_wait(request, message)

        return await self._webhook_call(request, "followup", work)

    def _maybe_wait(self, request: web.Request, message: FakeMessage) -> web.Response:
        # docs: interactions/receiving-and-responding.mdx "Create Followup Message": "`wait` is always true".
        return self._ok(message)

    async def get_webhook_message(self, request: web.Request) -> web.Response:
        async def work(interaction: FakeInteraction, payload: dict[str, Any], files: Files) -> Any:
            message = self._webhook_target(interaction, request.match_info["message_id"])
            return message, [], self._ok(message)

        return await self._webhook_call(request, "get", work)

    async def edit_webhook_message(self, request: web.Request) -> web.Response:
        fake = self.fake

        async def work(interaction: FakeInteraction, payload: dict[str, Any], files: Files) -> Any:
            message = self._webhook_target(interaction, request.match_info["message_id"])
            checked = interactions.as_validated(message, payload)
            validate_message(checked, fake.limits, creating=False, file_count=len(files))
            interactions.check_edit_flags(message, payload)
            where = fake.find_channel(message.channel_id)
            if where is not None and not message.ephemeral:
                # Ephemeral messages are not part of the thread; editing them stays possible.
                threads.refuse_if_archived(where)
            attachments = fake.build_attachments(
                payload,
                files,
                channel_id=message.channel_id,
                existing=message.attachments,
                size_limit=interaction.attachment_size_limit,
                ephemeral=message.ephemeral,
            )
            new = [a for a in attachments or [] if a not in message.attachments]
            await fake.edit_message(message, payload, attachments)
            return message, new, self._ok(message)

        return await self._webhook_call(request, "edit", work)

    async def delete_webhook_message(self, request: web.Request) -> web.Response:
        async def work(interaction: FakeInteraction, payload: dict[str, Any], files: Files) -> Any:
            message = self._webhook_target(interaction, request.match_info["message_id"])
            await self.fake.delete_message(message)
            return message, [], self._no_content()

        return await self._webhook_call(request, "delete", work)

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
        message = await fake.store_message(
            channel=channel,
            author=fake.bot_user,
            payload=payload,
            attachments=attachments,
            source="channel",
            flags=int(payload.get("flags") or 0) & SENDABLE_FLAGS,
            reference=reference,
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

    # ---- threads -------------------------------------------------------------------------------

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

    # ---- guilds --------------------------------------------------------------------------------

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

    # ---- CDN -----------------------------------------------------------------------------------

    async def cdn(self, request: web.Request) -> web.Response:
        attachment = self.fake.cdn.get(int(request.match_info["attachment_id"]))
        if attachment is None or str(attachment.id) != request.match_info["attachment_id"]:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=attachment.data, headers={"Content-Type": attachment.content_type})


async def read_body_list(request: web.Request) -> tuple[list[dict[str, Any]], Files]:
    """A JSON array body (bulk command overwrite).

    Args:
        request: the request.
    """
    text = await request.text()
    body = json.loads(text) if text else []
    if not isinstance(body, list):
        raise DiscordError(
            400,
            50035,
            "Invalid Form Body",
            {"_errors": [{"code": "LIST_TYPE_CONVERT", "message": "Only iterables may be used in a ListType"}]},
        )
    return body, {}


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
    guild = f"{p}/guilds/{snowflake % 'guild_id'}"
    r.add_get(guild, api.get_guild)
    r.add_get(f"{guild}/channels", api.guild_channels)
    r.add_get(f"{guild}/roles", api.guild_roles)
    r.add_get(f"{guild}/members/{snowflake % 'user_id'}", api.guild_member)
    r.add_get("/cdn/attachments/{channel_id}/{attachment_id}/{filename}", api.cdn)
