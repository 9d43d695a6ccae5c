"""The bot's registered application commands, and whether Discord would offer one to a member."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import discord

from tests.fakediscord.model import ADMINISTRATOR, FakeChannel, FakeGuild, FakeMember
from tests.fakediscord.permissions import USE_APPLICATION_COMMANDS, VIEW_CHANNEL, channel_permissions
from tests.fakediscord.threads import ArchivedThreadError


class CommandHiddenError(PermissionError):
    """Discord would not offer this command to this member (default_member_permissions)."""


class CommandRegistry:
    """Mixed into :class:`FakeDiscord`: global and guild commands as Discord stores them."""

    def echo_command(self, command: dict[str, Any], guild_id: int | None, command_id: int | None) -> dict[str, Any]:
        """A command as Discord stores and echoes it (ids, application_id, version, defaults).

        Args:
            command: the command JSON the bot sent.
            guild_id: the guild it is registered in, None for global.
            command_id: keep this id (re-registering a command keeps its id).
        """
        echoed = copy.deepcopy(command)
        echoed.update(
            id=str(command_id or self.ids.next()),
            application_id=str(self.application_id),
            version=str(self.ids.next()),
        )
        echoed.setdefault("type", 1)
        echoed.setdefault("description", "")
        # Discord answers the permission bit set as a string whatever the bot sent, and null
        # integration_types as the default (guild install).
        permissions = echoed.get("default_member_permissions")
        echoed["default_member_permissions"] = None if permissions is None else str(permissions)
        echoed.setdefault("nsfw", False)
        echoed.setdefault("contexts", None)
        if echoed.get("integration_types") is None:
            echoed["integration_types"] = [0]
        if guild_id is not None:
            echoed["guild_id"] = str(guild_id)
        return echoed

    def replace_commands(self, commands: Sequence[dict[str, Any]], guild_id: int | None) -> list[dict[str, Any]]:
        """Bulk-overwrite the global or a guild's commands (ids kept for same name and type).

        Args:
            commands: the command JSON list.
            guild_id: the guild, None for global.
        """
        registry = self.global_commands if guild_id is None else self.guild_commands.setdefault(guild_id, {})
        old_ids = {(c["name"], c.get("type", 1)): int(c["id"]) for c in registry.values()}
        fresh: dict[int, dict[str, Any]] = {}
        for command in commands:
            echoed = self.echo_command(command, guild_id, old_ids.get((command["name"], command.get("type", 1))))
            fresh[int(echoed["id"])] = echoed
        registry.clear()
        registry.update(fresh)
        self.notify()
        return list(registry.values())

    def register_commands(
        self, tree: discord.app_commands.CommandTree, *, guild: FakeGuild | None = None
    ) -> list[dict[str, Any]]:
        """Register a command tree as if the bot had synced it (for bots that sync only on demand).

        Afterwards :meth:`slash` knows the option types and checks option names, as after a real sync.

        Args:
            tree: the bot's ``bot.tree`` with its commands added.
            guild: register the tree's commands for this guild; the global ones when None.
        """
        scope = discord.Object(id=guild.id) if guild is not None else None
        payloads = [command.to_dict(tree) for command in tree.get_commands(guild=scope)]
        return self.replace_commands(payloads, guild.id if guild is not None else None)

    def find_command(self, name: str, command_type: int, guild_id: int) -> tuple[dict[str, Any] | None, int | None]:
        """A registered command by name and type: guild commands first, then global.

        Args:
            name: the top-level name.
            command_type: 1 chat input, 2 user, 3 message.
            guild_id: the guild it is used in.

        Returns:
            (the echoed command or None, the guild id it is registered in or None for global).
        """
        for command in self.guild_commands.get(guild_id, {}).values():
            if command["name"] == name and command.get("type", 1) == command_type:
                return command, guild_id
        for command in self.global_commands.values():
            if command["name"] == name and command.get("type", 1) == command_type:
                return command, None
        return None, None

    def _check_visible(self, command: dict[str, Any] | None, member: FakeMember) -> None:
        if command is None or command.get("default_member_permissions") in (None, ""):
            return
        needed = int(command["default_member_permissions"])
        have = member.permissions
        if have & ADMINISTRATOR or (needed and have & needed == needed):
            return
        raise CommandHiddenError(
            f"Discord would not show /{command['name']} to {member.user.username}: it needs permissions {needed}"
            " (pass force=True to send it anyway)"
        )

    def _check_can_invoke(self, member: FakeMember, channel: FakeChannel, *, force: bool) -> None:
        # docs: topics/threads.mdx "Active & Archived Threads": users cannot use application commands in
        # archived threads (even force=True cannot: Discord's client offers no way).
        if channel.is_thread and channel.archived:
            raise ArchivedThreadError(f"{channel.name!r} is archived: members cannot run commands there")
        # docs: topics/permissions.mdx USE_APPLICATION_COMMANDS (and no VIEW_CHANNEL hides the channel).
        bits = channel_permissions(self.guild_of(channel), member, channel)
        if not force and bits & (VIEW_CHANNEL | USE_APPLICATION_COMMANDS) != VIEW_CHANNEL | USE_APPLICATION_COMMANDS:
            raise CommandHiddenError(
                f"{member.user.username} cannot use application commands in #{channel.name} (pass force=True)"
            )
