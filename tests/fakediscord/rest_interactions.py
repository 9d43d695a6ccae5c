"""REST routes of interactions: callbacks, and the interaction webhook (followups, original response)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.fakediscord import installs, interactions, threads
from tests.fakediscord.model import FakeChannel
from tests.fakediscord.permissions import MANAGE_THREADS
from tests.fakediscord.records import (
    AUTOCOMPLETE,
    AUTOCOMPLETE_RESULT,
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE_MESSAGE,
    EPHEMERAL,
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
from tests.fakediscord.responses import INTERACTION_ID, json_response
from tests.fakediscord.rest_common import SENDABLE_FLAGS, Files, RouteBase, message_type_for, read_body
from tests.fakediscord.rules import (
    INTERACTION_ALREADY_ACKNOWLEDGED,
    INVALID_WEBHOOK_TOKEN,
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


class InteractionRoutes(RouteBase):
    """Route handlers: interaction callbacks and interaction webhooks."""

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
            channel = fake.place_channel(interaction.channel_id)
            assert channel is not None
            message: FakeMessage | None = None
            attachments: list[Any] = []
            if callback_type == CHANNEL_MESSAGE:
                message, attachments = await self._post_as(interaction, channel, data, files, "interaction")
                interaction.original_message_id = message.id
            elif callback_type == DEFERRED_CHANNEL_MESSAGE:
                flags = LOADING | (int(data.get("flags") or 0) & EPHEMERAL)
                message = await self._store_as(interaction, channel, {}, [], "interaction", flags)
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

    async def _post_as(
        self, interaction: FakeInteraction, channel: FakeChannel, payload: dict[str, Any], files: Any, source: str
    ) -> tuple[FakeMessage, list[Any]]:
        """A new message the interaction posts (its response or a followup), ephemeral when its flags say so."""
        fake = self.fake
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
        message = await self._store_as(interaction, channel, payload, attachments, source, flags)
        return message, attachments

    async def _store_as(
        self,
        interaction: FakeInteraction,
        channel: FakeChannel,
        payload: dict[str, Any],
        attachments: Any,
        source: str,
        flags: int,
    ) -> FakeMessage:
        fake = self.fake
        if installs.is_outside(fake, channel):
            # A place the bot is not in: the message exists, but no gateway event reaches the bot.
            return installs.store_outside_message(
                fake,
                channel=channel,
                payload=payload,
                attachments=attachments,
                source=source,
                flags=flags,
                message_type=message_type_for(interaction),
                interaction_id=interaction.id,
            )
        return await fake.store_message(
            channel=channel,
            author=fake.bot_user,
            payload=payload,
            attachments=attachments,
            source=source,
            flags=flags,
            message_type=message_type_for(interaction),
            interaction=interaction,
        )

    async def _thread_activity(self, channel: FakeChannel) -> None:
        """A public followup unarchives an archived thread; an archived locked one refuses (50083)."""
        # Interaction responses are not bound by the bot's channel permissions, so only the thread's state counts.
        await threads.before_post(self.fake, channel, MANAGE_THREADS)

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
            installs.check_followup_room(fake, interaction.id, len(interaction.followup_ids))
            channel = fake.place_channel(interaction.channel_id)
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
            message, attachments = await self._post_as(interaction, channel, payload, files, "followup")
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
            where = fake.place_channel(message.channel_id)
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
