"""Injecting interactions: creating and sending them, resolved option data, and component clicks and modals."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from tests.fakediscord import installs
from tests.fakediscord.limits import upload_limit
from tests.fakediscord.modal_rules import accepts_file
from tests.fakediscord.model import (
    ALL_PERMISSIONS,
    FakeAttachment,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
)
from tests.fakediscord.records import MESSAGE_COMPONENT, MODAL_SUBMIT, FakeInteraction, FakeMessage
from tests.fakediscord.rules import SELECT_TYPES

# Option types of application commands.
OPTION_SUB_COMMAND = 1
OPTION_SUB_COMMAND_GROUP = 2
OPTION_STRING = 3
OPTION_INTEGER = 4
OPTION_BOOLEAN = 5
OPTION_USER = 6
OPTION_CHANNEL = 7
OPTION_ROLE = 8
OPTION_MENTIONABLE = 9
OPTION_NUMBER = 10
OPTION_ATTACHMENT = 11
FILE_UPLOAD, RADIO_GROUP = 19, 21


class InteractionInjection:
    """Mixed into :class:`FakeDiscord`: clicks, selects and modal submits, and what every injected interaction uses.

    The shared part: creating an interaction, sending INTERACTION_CREATE, resolved data of option values.
    """

    def _new_interaction(
        self,
        *,
        type: int,
        member: FakeMember,
        channel: FakeChannel,
        data: dict[str, Any],
        name: str,
        message: FakeMessage | None,
        owners: dict[str, str] | None = None,
    ) -> FakeInteraction:
        interaction = FakeInteraction(
            fake=self,
            interaction_id=self.ids.next(),
            token="aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48),
            type=type,
            user=member,
            # DMs have no guild (installs.py keeps their channels in holders that are no servers).
            guild_id=None if installs.context_of(self, channel) != installs.GUILD else channel.guild_id,
            channel_id=channel.id,
            data=data,
            message_id=message.id if message is not None else None,
            name=name,
            attachment_size_limit=upload_limit(self, self.guild_of(channel)),
        )
        self.interactions[interaction.id] = interaction
        self._by_token[interaction.token] = interaction
        if owners is not None:
            installs.installs(self).owners[interaction.id] = owners
        return interaction

    def interaction_for_token(self, token: str) -> FakeInteraction | None:
        """The interaction that owns a webhook token.

        Args:
            token: the token.
        """
        return self._by_token.get(token)

    async def _send_interaction(
        self,
        interaction: FakeInteraction,
        member: FakeMember,
        channel: FakeChannel,
        *,
        message: FakeMessage | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        await self.wait_until_ready()
        if installs.is_outside(self, channel):
            payload = installs.outside_payload(self, interaction, member, channel, message=message, locale=locale)
        else:
            payload = self.interaction_payload(interaction, member, channel, message=message, locale=locale)
            payload = installs.with_owners(self, payload, interaction.id)

        def sent(moment: float) -> None:
            if interaction.sent_at is None:
                interaction.sent_at = moment

        await self.gateway.dispatch("INTERACTION_CREATE", payload, on_sent=sent)
        self.notify()
        return interaction

    def _check_upload(self, upload: dict[str, Any], files: list[FakeAttachment], limit: int) -> None:
        """What Discord's client enforces on a modal's file upload before the member can submit."""
        required = upload.get("required", True)
        low = upload.get("min_values", 1 if required else 0)
        high = upload.get("max_values", 1)
        if not (low <= len(files) <= high) and (files or required):
            raise ValueError(f"file upload {upload['custom_id']!r} takes {low} to {high} files, not {len(files)}")
        for file in files:
            if not accepts_file(upload, file.filename):
                raise ValueError(f"file upload {upload['custom_id']!r} does not take {file.filename!r}")
            if file.size > limit:
                raise ValueError(f"{file.filename!r} is over the member's upload limit")

    def _option_value(self, value: Any, option_type: int, resolved: dict[str, dict[str, Any]], guild: FakeGuild) -> Any:
        if isinstance(value, FakeAttachment):
            resolved.setdefault("attachments", {})[str(value.id)] = value.payload()
            return str(value.id)
        if isinstance(value, FakeMember):
            resolved.setdefault("users", {})[str(value.id)] = value.user.payload()
            resolved.setdefault("members", {})[str(value.id)] = value.payload(with_user=False, with_permissions=True)
            return str(value.id)
        if isinstance(value, FakeUser):
            resolved.setdefault("users", {})[str(value.id)] = value.payload()
            if value.id in guild.members:
                member_payload = guild.members[value.id].payload(with_user=False, with_permissions=True)
                resolved.setdefault("members", {})[str(value.id)] = member_payload
            return str(value.id)
        if isinstance(value, FakeRole):
            resolved.setdefault("roles", {})[str(value.id)] = value.payload()
            return str(value.id)
        if isinstance(value, FakeChannel):
            channel_payload = value.payload()
            channel_payload["permissions"] = str(ALL_PERMISSIONS)  # the invoking member's are not known here
            resolved.setdefault("channels", {})[str(value.id)] = channel_payload
            return str(value.id)
        if option_type == OPTION_NUMBER and isinstance(value, int):
            return value
        return value

    async def click(
        self,
        message: FakeMessage | int,
        custom_id: str,
        *,
        user: FakeMember | None = None,
        values: Sequence[str | int | FakeMember | FakeRole | FakeChannel] | None = None,
    ) -> FakeInteraction:
        """Click a button or choose in a select menu on a message (type 3).

        Args:
            message: the message (or its id) carrying the component.
            custom_id: the component's custom_id (it must be on the message and enabled).
            user: who clicks; ``bob`` when None.
            values: chosen values for select menus.
        """
        target = message if isinstance(message, FakeMessage) else self.messages[int(message)]
        if target.deleted:
            raise ValueError(f"message {target.id} was deleted; nobody can click on it")
        component = target.component(custom_id)
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled on message {target.id}")
        channel = self.find_channel(target.channel_id)
        if channel is None:
            raise ValueError(f"channel {target.channel_id} is unknown")
        member = self.member_of(channel, user or self.member)
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if component["type"] in SELECT_TYPES:
            resolved: dict[str, dict[str, Any]] = {}
            chosen = [
                self._option_value(v, OPTION_STRING, resolved, self.guild_of(channel))
                if not isinstance(v, (str, int))
                else str(v)
                for v in (values or [])
            ]
            if component["type"] == 3:
                allowed = [option["value"] for option in component.get("options", [])]
                stray = [v for v in chosen if v not in allowed]
                if stray:
                    raise ValueError(f"select {custom_id!r} offers {allowed}, not {stray}")
            data["values"] = chosen
            if resolved:
                data["resolved"] = resolved
        elif values:
            raise ValueError("values are for select menus only")
        interaction = self._new_interaction(
            type=MESSAGE_COMPONENT,
            member=member,
            channel=channel,
            data=data,
            name=custom_id,
            message=target,
            owners=installs.installs(self).owners.get(target.interaction_id or 0),
        )
        return await self._send_interaction(interaction, member, channel, message=target)

    async def select(
        self,
        message: FakeMessage | int,
        custom_id: str,
        values: Sequence[str | int | FakeMember | FakeRole | FakeChannel],
        *,
        user: FakeMember | None = None,
    ) -> FakeInteraction:
        """Choose values in a select menu (a :meth:`click` with values).

        Args:
            message: the message carrying the select.
            custom_id: the select's custom_id.
            values: the chosen values.
            user: who chooses; ``bob`` when None.
        """
        return await self.click(message, custom_id, user=user, values=values)

    async def submit_modal(
        self,
        source: FakeInteraction,
        values: Mapping[str, str | Sequence[str]],
        *,
        user: FakeMember | None = None,
    ) -> FakeInteraction:
        """Submit the modal that the bot opened in answer to ``source`` (type 5).

        Args:
            source: the interaction the bot answered with a modal (callback type 9).
            values: text input (or select) custom_id -> value(s), a radio group's chosen value, a file
                upload's :class:`FakeAttachment` (or several); untouched inputs keep their default.
            user: who submits; the source's user when None.

        Raises:
            ValueError: what Discord's client would not let the member submit (a required input left
                empty, a file the upload does not take or over the upload limit, a choice not offered).
        """
        modal = source.modal
        if modal is None:
            raise ValueError(f"{source!r} was not answered with a modal")
        remaining: dict[str, Any] = dict(values)
        resolved: dict[str, dict[str, Any]] = {}
        channel = self.find_channel(source.channel_id)
        assert channel is not None
        guild = self.guild_of(channel)

        def leaf(component: dict[str, Any]) -> dict[str, Any] | None:
            custom_id = component.get("custom_id")
            if custom_id is None:
                return None
            if component["type"] == FILE_UPLOAD:
                files = remaining.pop(custom_id, [])
                files = [files] if isinstance(files, FakeAttachment) else list(files)
                self._check_upload(component, files, upload_limit(self, guild))
                ids = [self._option_value(f, OPTION_ATTACHMENT, resolved, guild) for f in files]
                return {"type": FILE_UPLOAD, "id": component.get("id"), "custom_id": custom_id, "values": ids}
            if component["type"] == RADIO_GROUP:
                offered = [option["value"] for option in component.get("options", [])]
                default = next((o["value"] for o in component.get("options", []) if o.get("default")), None)
                chosen = remaining.pop(custom_id, default)
                if chosen is not None and chosen not in offered:
                    raise ValueError(f"radio group {custom_id!r} offers {offered}, not {chosen!r}")
                if chosen is None and component.get("required", True):
                    raise ValueError(f"radio group {custom_id!r} needs a choice")
                return {"type": RADIO_GROUP, "id": component.get("id"), "custom_id": custom_id, "value": chosen}
            if component["type"] == 4:
                text = remaining.pop(custom_id, component.get("value") or "")
                if not isinstance(text, str):
                    raise ValueError(f"text input {custom_id!r} takes a string")
                if component.get("required", True) and not text:
                    raise ValueError(f"text input {custom_id!r} is required")
                if component.get("max_length") is not None and len(text) > component["max_length"]:
                    raise ValueError(f"text input {custom_id!r} allows {component['max_length']} characters")
                return {"type": 4, "id": component.get("id"), "custom_id": custom_id, "value": text}
            chosen = remaining.pop(custom_id, [])
            return {
                "type": component["type"],
                "id": component.get("id"),
                "custom_id": custom_id,
                "values": [chosen] if isinstance(chosen, str) else list(chosen),
            }

        submitted: list[dict[str, Any]] = []
        for component in modal.get("components", []):
            if component.get("type") == 1:
                children = [c for c in (leaf(child) for child in component.get("components", [])) if c is not None]
                submitted.append({"type": 1, "id": component.get("id"), "components": children})
            elif component.get("type") == 18:
                inner = leaf(component["component"])
                if inner is not None:
                    submitted.append({"type": 18, "id": component.get("id"), "component": inner})
            else:
                inner = leaf(component)
                if inner is not None:
                    submitted.append(inner)
        if remaining:
            raise ValueError(f"the modal has no inputs {sorted(remaining)}")
        member = user or (source.user if isinstance(source.user, FakeMember) else self.member)
        message = self.messages.get(source.message_id) if source.message_id is not None else None
        data: dict[str, Any] = {"custom_id": modal["custom_id"], "components": submitted}
        if resolved:
            data["resolved"] = resolved
        interaction = self._new_interaction(
            type=MODAL_SUBMIT,
            member=member,
            channel=channel,
            data=data,
            name=modal["custom_id"],
            message=message,
            owners=installs.installs(self).owners.get(source.id),
        )
        return await self._send_interaction(interaction, member, channel, message=message)
