"""Building the fake's world (users, guilds, members, CDN files) and looking things up in it."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

import discord

from tests.fakediscord.installs import BOT_DM, DM, PRIVATE_CHANNEL, installs
from tests.fakediscord.model import (
    ADMINISTRATOR,
    BOT_PERMISSIONS,
    FakeAttachment,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
    guess_content_type,
)


class WorldBuilding:
    """Mixed into :class:`FakeDiscord`: the default guild, members, channels and CDN files, and lookups by id.

    Like every mixin of :class:`FakeDiscord`, it keeps no state of its own: ``FakeDiscord.__init__`` sets it up.
    """

    def _populate(self) -> None:
        guild = self.add_guild("Jam Session")
        guild.add_text_channel("general", topic="talk")
        guild.add_text_channel("music", topic="jams")
        admin = self.add_member("alice", guild=guild, admin=True)
        guild.owner_id = admin.id
        self.add_member("bob", guild=guild)
        self.app_owner = admin.user

    def add_user(self, username: str, *, bot: bool = False) -> FakeUser:
        """Create a user (not yet a member anywhere).

        Args:
            username: the user's name.
            bot: whether it is a bot account.
        """
        user = FakeUser(id=self.ids.next(), username=username, bot=bot, global_name=username.title())
        self.users[user.id] = user
        return user

    def add_guild(self, name: str) -> FakeGuild:
        """Create a guild with the bot in it (its own managed role included).

        Args:
            name: the guild's name.
        """
        guild = FakeGuild(self.ids.next(), name, ids=self.ids, clock=self.clock)
        bot_role = guild.add_role(self.bot_user.username, BOT_PERMISSIONS, managed=True)
        guild.add_member(self.bot_user, roles=[bot_role])
        guild.on_change = self._guild_changed
        self.guilds[guild.id] = guild
        self._guild_changed("GUILD_CREATE", guild.payload())
        return guild

    def add_member(
        self,
        username: str,
        *,
        guild: FakeGuild | None = None,
        admin: bool = False,
        permissions: int | discord.Permissions | None = None,
        roles: Sequence[FakeRole] = (),
    ) -> FakeMember:
        """Create a user and make it a member.

        Args:
            username: the user's name.
            guild: the guild; the default guild when None.
            admin: give it the guild's "Admin" role (ADMINISTRATOR), created on first use.
            permissions: give it a personal role with these permission bits.
            roles: further roles.
        """
        guild = guild or self.guild
        member_roles = list(roles)
        if admin:
            admin_role = next((r for r in guild.roles.values() if r.name == "Admin"), None)
            member_roles.append(admin_role or guild.add_role("Admin", ADMINISTRATOR))
        if permissions is not None:
            member_roles.append(guild.add_role(f"{username}-role", permissions))
        return guild.add_member(self.add_user(username), roles=member_roles)

    @property
    def guild(self) -> FakeGuild:
        """The first guild."""
        return next(iter(self.guilds.values()))

    @property
    def channel(self) -> FakeChannel:
        """The first text channel of the first guild (``general`` by default)."""
        return self.guild.text_channels()[0]

    @property
    def admin(self) -> FakeMember:
        """The default admin member (``alice``)."""
        return self.guild.member_named("alice")

    @property
    def member(self) -> FakeMember:
        """The default ordinary member (``bob``)."""
        return self.guild.member_named("bob")

    @property
    def bot_member(self) -> FakeMember:
        """The bot's member in the first guild."""
        return self.guild.members[self.bot_user.id]

    def find_channel(self, channel_id: int) -> FakeChannel | None:
        """A channel or thread of any guild.

        Args:
            channel_id: its id.
        """
        for guild in self.guilds.values():
            channel = guild.channels.get(channel_id)
            if channel is not None:
                return channel
        # Places the bot is not in are found too (its REST calls there get 403); its own DM is not a guild channel.
        channel = self.place_channel(channel_id)
        if channel is not None and installs(self).private.get(channel.id) != BOT_DM:
            return channel
        return None

    def place_channel(self, channel_id: int) -> FakeChannel | None:
        """Any channel an interaction may come from: the bot's guilds, places it is not in, a user's bot DM.

        Args:
            channel_id: its id.
        """
        for guild in (*self.guilds.values(), *installs(self).outside.values()):
            channel = guild.channels.get(channel_id)
            if channel is not None:
                return channel
        return None

    def guild_of(self, channel: FakeChannel) -> FakeGuild:
        """The guild a channel belongs to.

        Args:
            channel: the channel.
        """
        return self.guilds.get(channel.guild_id) or installs(self).outside[channel.guild_id]

    def user_for(self, user_id: int) -> FakeUser | None:
        """A known user.

        Args:
            user_id: its id.
        """
        return self.users.get(user_id)

    def attachment(
        self,
        filename: str,
        data: bytes,
        *,
        content_type: str | None = None,
        size: int | None = None,
        channel: FakeChannel | None = None,
        description: str | None = None,
        duration_secs: float | None = None,
    ) -> FakeAttachment:
        """Register bytes on the fake CDN; pass the result as a slash option or a message attachment.

        Args:
            filename: the file name shown to the bot.
            data: the bytes the CDN serves.
            content_type: MIME type; guessed from the name when None.
            size: the size Discord reports; ``len(data)`` when None (set it larger to fake a huge file).
            channel: the channel in the CDN path; the default channel when None.
            description: alt text.
            duration_secs: set for voice messages.
        """
        return self._register_cdn(
            filename,
            data,
            channel_id=(channel or self.channel).id,
            content_type=content_type,
            size=size,
            description=description,
            duration_secs=duration_secs,
        )

    def _register_cdn(
        self,
        filename: str,
        data: bytes,
        *,
        channel_id: int,
        content_type: str | None = None,
        size: int | None = None,
        description: str | None = None,
        ephemeral: bool = False,
        duration_secs: float | None = None,
    ) -> FakeAttachment:
        attachment_id = self.ids.next()
        url = f"{self.base_url}/cdn/attachments/{channel_id}/{attachment_id}/{quote(filename)}"
        attachment = FakeAttachment(
            id=attachment_id,
            filename=filename,
            data=data,
            content_type=content_type or guess_content_type(filename),
            url=url,
            size=len(data) if size is None else size,
            description=description,
            ephemeral=ephemeral,
            duration_secs=duration_secs,
        )
        self.cdn[attachment_id] = attachment
        return attachment

    def advance(self, seconds: float) -> None:
        """Move the fake clock forward (interaction tokens expire after 15 fake minutes).

        Args:
            seconds: how far.
        """
        self.clock.advance(seconds)
        self.notify()

    def close_dms(self, user: FakeMember | FakeUser) -> None:
        """The user accepts no DMs from now on: the bot's DMs get 403 50007.

        Args:
            user: the member or user.
        """
        self.dms.closed.add(user.id)

    # ---- user installs (installs.py) ------------------------------------------------------------

    def install_for_user(self, user: FakeMember | FakeUser) -> None:
        """The user installs the app to their account (OAuth2 ``integration_type=1``).

        Args:
            user: the member or user.
        """
        installs(self).users.add(user.id)

    def add_outside_guild(self, name: str, *, members: Sequence[FakeMember | FakeUser] = ()) -> FakeGuild:
        """A server the bot is not in (never in READY/GUILD_CREATE), with a ``general`` channel.

        Args:
            name: its name.
            members: users who are members there (use :meth:`member_of` for their member objects).
        """
        guild = FakeGuild(self.ids.next(), name, ids=self.ids, clock=self.clock)
        guild.add_text_channel("general")
        for user in members:
            guild.add_member(user.user if isinstance(user, FakeMember) else user)
        installs(self).outside[guild.id] = guild
        return guild

    def private_channel(self, user: FakeMember | FakeUser, other: FakeMember | FakeUser) -> FakeChannel:
        """A DM between two users (interaction context PRIVATE_CHANNEL); the bot is not in it.

        Args:
            user: one user.
            other: the other.
        """
        return self._private_place([user, other], self.ids.next(), PRIVATE_CHANNEL)

    def bot_dm_channel(self, user: FakeMember | FakeUser) -> FakeChannel:
        """The user's DM with the bot (interaction context BOT_DM): the channel Create DM answers.

        Args:
            user: the user.
        """
        plain = user.user if isinstance(user, FakeMember) else user
        return self._private_place([user], self.dms.open(plain).id, BOT_DM)

    def member_of(self, channel: FakeChannel, user: FakeMember | FakeUser) -> FakeMember:
        """A user's member object in a channel's place (slash/click take it as ``user=``).

        Args:
            channel: the channel.
            user: the user (or their member object elsewhere).
        """
        member = self.guild_of(channel).members.get(user.id)
        if member is None and isinstance(user, FakeMember):
            return user  # e.g. someone who is no member there (the fake's own rules decide what they may do)
        if member is None:
            raise KeyError(f"{user.username} is not a member where channel {channel.id} is")
        return member

    def _private_place(self, users: Sequence[FakeMember | FakeUser], channel_id: int, context: int) -> FakeChannel:
        existing = self.place_channel(channel_id)
        if existing is not None:
            return existing
        # A holder, not a server: it only gives the channel its members and permissions.
        holder = FakeGuild(self.ids.next(), "(private channel)", ids=self.ids, clock=self.clock)
        for user in users:
            holder.add_member(user.user if isinstance(user, FakeMember) else user)
        channel = FakeChannel(id=channel_id, guild_id=holder.id, name="dm", type=DM)
        holder.channels[channel.id] = channel
        installs(self).outside[holder.id] = holder
        installs(self).private[channel.id] = context
        return channel
