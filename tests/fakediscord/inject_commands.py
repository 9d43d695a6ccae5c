"""Injecting application commands: slash commands, autocomplete and context-menu commands."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.fakediscord import installs
from tests.fakediscord.inject_interactions import (
    OPTION_ATTACHMENT,
    OPTION_BOOLEAN,
    OPTION_CHANNEL,
    OPTION_INTEGER,
    OPTION_MENTIONABLE,
    OPTION_NUMBER,
    OPTION_ROLE,
    OPTION_STRING,
    OPTION_SUB_COMMAND,
    OPTION_SUB_COMMAND_GROUP,
    OPTION_USER,
)
from tests.fakediscord.model import FakeAttachment, FakeChannel, FakeGuild, FakeMember, FakeRole, FakeUser
from tests.fakediscord.records import APPLICATION_COMMAND, AUTOCOMPLETE, FakeInteraction, FakeMessage


class CommandInjection:
    """Mixed into :class:`FakeDiscord`: a user runs a command (checked against the registered one when synced)."""

    @staticmethod
    def _infer_option_type(value: Any) -> int:
        if isinstance(value, bool):
            return OPTION_BOOLEAN
        if isinstance(value, int):
            return OPTION_INTEGER
        if isinstance(value, float):
            return OPTION_NUMBER
        if isinstance(value, FakeAttachment):
            return OPTION_ATTACHMENT
        if isinstance(value, (FakeMember, FakeUser)):
            return OPTION_USER
        if isinstance(value, FakeRole):
            return OPTION_ROLE
        if isinstance(value, FakeChannel):
            return OPTION_CHANNEL
        return OPTION_STRING

    @staticmethod
    def _check_option(spec: dict[str, Any], value: Any, path: str) -> None:
        expected: dict[int, tuple[type, ...]] = {
            OPTION_STRING: (str,),
            OPTION_INTEGER: (int,),
            OPTION_BOOLEAN: (bool,),
            OPTION_NUMBER: (int, float),
            OPTION_ATTACHMENT: (FakeAttachment,),
            OPTION_USER: (FakeMember, FakeUser),
            OPTION_MENTIONABLE: (FakeMember, FakeUser, FakeRole),
            OPTION_ROLE: (FakeRole,),
            OPTION_CHANNEL: (FakeChannel,),
        }
        kinds = expected.get(spec["type"])
        bad_bool = isinstance(value, bool) and spec["type"] in (OPTION_INTEGER, OPTION_NUMBER)
        if kinds is not None and (not isinstance(value, kinds) or bad_bool):
            raise ValueError(f"option {path} is type {spec['type']} on Discord; {value!r} does not fit")
        choices = spec.get("choices")
        if choices and value not in [choice["value"] for choice in choices]:
            raise ValueError(f"option {path} must be one of {[c['value'] for c in choices]}, not {value!r}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if spec.get("min_value") is not None and value < spec["min_value"]:
                raise ValueError(f"option {path}={value} is below min_value {spec['min_value']}")
            if spec.get("max_value") is not None and value > spec["max_value"]:
                raise ValueError(f"option {path}={value} is above max_value {spec['max_value']}")
        if isinstance(value, str):
            if spec.get("min_length") is not None and len(value) < spec["min_length"]:
                raise ValueError(f"option {path} is shorter than min_length {spec['min_length']}")
            if spec.get("max_length") is not None and len(value) > spec["max_length"]:
                raise ValueError(f"option {path} is longer than max_length {spec['max_length']}")

    def _build_command_data(
        self,
        command: str,
        options: Mapping[str, Any] | None,
        *,
        guild: FakeGuild,
        member: FakeMember,
        channel: FakeChannel,
        focused: str | None,
        force: bool,
        owners: list[dict[str, str]],
    ) -> dict[str, Any]:
        parts = command.strip().lstrip("/").split()
        if not parts or len(parts) > 3:
            raise ValueError(f"command path {command!r} must be 'name', 'name sub' or 'name group sub'")
        registered, registered_guild = self.find_command(parts[0], 1, guild.id)
        if not force:
            self._check_visible(registered, member)
        self._check_can_invoke(member, channel, force=force)
        owners[:] = [installs.owners_for(self, registered, member.user, channel)]
        specs: list[dict[str, Any]] | None = None
        if registered is not None:
            specs = registered.get("options") or []
            for part in parts[1:]:
                sub = next((o for o in specs if o["name"] == part and o["type"] in (1, 2)), None)
                if sub is None:
                    raise ValueError(f"/{parts[0]} has no subcommand or group {part!r}")
                specs = sub.get("options") or []
        values = dict(options or {})
        resolved: dict[str, dict[str, Any]] = {}
        leaf: list[dict[str, Any]] = []
        by_name = {spec["name"]: spec for spec in specs} if specs is not None else {}
        if specs is not None:
            unknown = set(values) - set(by_name)
            if unknown:
                raise ValueError(f"/{command} has no options {sorted(unknown)}; it has {sorted(by_name)}")
            if focused is None:
                missing = [s["name"] for s in specs if s.get("required") and s["name"] not in values]
                if missing:
                    raise ValueError(f"/{command} needs options {missing}")
        for name, value in values.items():
            spec = by_name.get(name)
            option_type = spec["type"] if spec is not None else self._infer_option_type(value)
            if spec is not None and name != focused:
                self._check_option(spec, value, f"{command}.{name}")
            entry: dict[str, Any] = {
                "name": name,
                "type": option_type,
                "value": self._option_value(value, option_type, resolved, guild),
            }
            if name == focused:
                entry["focused"] = True
                entry["value"] = value if isinstance(value, str) else str(value)
            leaf.append(entry)
        if focused is not None and focused not in values:
            raise ValueError(f"the focused option {focused!r} needs a (partial) value in options")
        nested = leaf
        for depth, part in reversed(list(enumerate(parts[1:], start=1))):
            kind = OPTION_SUB_COMMAND if depth == len(parts) - 1 else OPTION_SUB_COMMAND_GROUP
            nested = [{"name": part, "type": kind, "options": nested}]
        data: dict[str, Any] = {
            "id": registered["id"] if registered is not None else str(self.ids.next()),
            "name": parts[0],
            "type": 1,
            "options": nested,
        }
        if resolved:
            data["resolved"] = resolved
        if registered_guild is not None:
            data["guild_id"] = str(registered_guild)
        return data

    async def slash(
        self,
        command: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: FakeMember | None = None,
        channel: FakeChannel | None = None,
        locale: str = "en-US",
        force: bool = False,
    ) -> FakeInteraction:
        """Inject a slash command (INTERACTION_CREATE type 2) and return its handle.

        Option types come from the registered command when the bot synced it (the fake then also
        checks names, required options, choices and ranges, as Discord's client would); otherwise
        they are inferred from the Python values (str, int, float, bool, FakeAttachment,
        FakeMember/FakeUser, FakeRole, FakeChannel).

        Args:
            command: "name", "name sub" or "name group sub".
            options: option name -> value; FakeAttachment values come with resolved attachment data.
            user: who runs it; the ordinary member ``bob`` when None.
            channel: where; the default channel when None.
            locale: the user's locale.
            force: send it even if default_member_permissions would hide it from ``user``.
        """
        channel = channel or self.channel
        member = self.member_of(channel, user or self.member)
        owners: list[dict[str, str]] = []
        data = self._build_command_data(
            command,
            options,
            guild=self.guild_of(channel),
            member=member,
            channel=channel,
            focused=None,
            force=force,
            owners=owners,
        )
        interaction = self._new_interaction(
            type=APPLICATION_COMMAND,
            member=member,
            channel=channel,
            data=data,
            name=command,
            message=None,
            owners=owners[0],
        )
        return await self._send_interaction(interaction, member, channel, locale=locale)

    async def autocomplete(
        self,
        command: str,
        options: Mapping[str, Any],
        *,
        focused: str,
        user: FakeMember | None = None,
        channel: FakeChannel | None = None,
    ) -> FakeInteraction:
        """Inject an autocomplete request (type 4); read ``.choices`` after ``wait_for_response()``.

        Args:
            command: "name", "name sub" or "name group sub".
            options: what the user has filled in so far (the focused one as typed).
            focused: the option being typed.
            user: who types; ``bob`` when None.
            channel: where; the default channel when None.
        """
        channel = channel or self.channel
        member = self.member_of(channel, user or self.member)
        owners: list[dict[str, str]] = []
        data = self._build_command_data(
            command,
            options,
            guild=self.guild_of(channel),
            member=member,
            channel=channel,
            focused=focused,
            force=True,
            owners=owners,
        )
        interaction = self._new_interaction(
            type=AUTOCOMPLETE, member=member, channel=channel, data=data, name=command, message=None, owners=owners[0]
        )
        return await self._send_interaction(interaction, member, channel)

    async def message_command(
        self,
        name: str,
        target: FakeMessage,
        *,
        user: FakeMember | None = None,
        force: bool = False,
    ) -> FakeInteraction:
        """Run a message context-menu command on a message (type 2, data.type 3, target resolved).

        Args:
            name: the command's name.
            target: the message it is run on.
            user: who runs it; ``bob`` when None.
            force: send it even if default_member_permissions would hide it.
        """
        channel = self.place_channel(target.channel_id)
        assert channel is not None
        member = self.member_of(channel, user or self.member)
        registered, registered_guild = self.find_command(name, 3, channel.guild_id)
        if not force:
            self._check_visible(registered, member)
        self._check_can_invoke(member, channel, force=force)
        owners = installs.owners_for(self, registered, member.user, channel)
        data: dict[str, Any] = {
            "id": registered["id"] if registered else str(self.ids.next()),
            "name": name,
            "type": 3,
            "target_id": str(target.id),
            "resolved": {"messages": {str(target.id): self.message_payload(target)}},
        }
        if registered_guild is not None:
            data["guild_id"] = str(registered_guild)
        interaction = self._new_interaction(
            type=APPLICATION_COMMAND, member=member, channel=channel, data=data, name=name, message=None, owners=owners
        )
        return await self._send_interaction(interaction, member, channel)

    async def user_command(
        self,
        name: str,
        target: FakeMember,
        *,
        user: FakeMember | None = None,
        channel: FakeChannel | None = None,
        force: bool = False,
    ) -> FakeInteraction:
        """Run a user context-menu command on a member (type 2, data.type 2).

        Args:
            name: the command's name.
            target: the member it is run on.
            user: who runs it; ``bob`` when None.
            channel: where; the default channel when None.
            force: send it even if default_member_permissions would hide it.
        """
        channel = channel or self.channel
        member = self.member_of(channel, user or self.member)
        registered, registered_guild = self.find_command(name, 2, channel.guild_id)
        if not force:
            self._check_visible(registered, member)
        self._check_can_invoke(member, channel, force=force)
        owners = installs.owners_for(self, registered, member.user, channel)
        resolved: dict[str, dict[str, Any]] = {}
        self._option_value(target, OPTION_USER, resolved, self.guild_of(channel))
        data: dict[str, Any] = {
            "id": registered["id"] if registered else str(self.ids.next()),
            "name": name,
            "type": 2,
            "target_id": str(target.id),
            "resolved": resolved,
        }
        if registered_guild is not None:
            data["guild_id"] = str(registered_guild)
        interaction = self._new_interaction(
            type=APPLICATION_COMMAND, member=member, channel=channel, data=data, name=name, message=None, owners=owners
        )
        return await self._send_interaction(interaction, member, channel)
