"""/jam: settings, quotas, blocks and status for server admins; /jam sync for the bot owner.

Hidden from members with ``default_member_permissions`` (Manage Server) and
checked again here, because Discord lets server owners override who sees what.
"""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.bot import JamBot
from bot.discord.interactions import ADMIN_PERMS, is_guild_admin, send_ephemeral, settings_text
from bot.discord.render import clip
from bot.errors import UserInputError


# Server settings and jam threads need the bot in the server: guild install, guild context only.
@app_commands.allowed_installs(guilds=True, users=False)
@app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
class Admin(commands.GroupCog, group_name="jam", group_description="jamgen settings for server admins"):
    """The /jam command group."""

    settings_group = app_commands.Group(name="settings", description="Server settings")
    quota_group = app_commands.Group(name="quota", description="Members' quotas")

    def __init__(self, bot: JamBot) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.command is not None and interaction.command.name == "sync":
            return True
        return is_guild_admin(interaction)

    # ------------------------------------------------------------- settings
    @settings_group.command(name="show", description="Show this server's jamgen settings")
    async def settings_show(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await send_ephemeral(interaction, await settings_text(self.bot, interaction.guild_id))

    @settings_group.command(name="set", description="Change this server's defaults")
    @app_commands.describe(
        default_model="Model used when members don't pick one",
        max_duration="Longest track in seconds",
        max_takes="Most takes per request",
        remix_by_reply="Allow remixing by replying to a track",
        remix_mode="Mode of a reply without a melody:/style:/continue: prefix",
        daily_budget="Default seconds of music per member per day",
    )
    async def settings_set(
        self,
        interaction: discord.Interaction,
        default_model: str | None = None,
        max_duration: app_commands.Range[int, 1, 300] | None = None,
        max_takes: app_commands.Range[int, 1, 4] | None = None,
        remix_by_reply: bool | None = None,
        remix_mode: str | None = None,
        daily_budget: app_commands.Range[int, 0, 1_000_000] | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        changes = {
            "default_model": default_model,
            "max_duration": max_duration,
            "max_takes": max_takes,
            "remix_by_reply": remix_by_reply,
            "remix_mode": remix_mode,
            "default_budget": daily_budget,
        }
        changes = {k: v for k, v in changes.items() if v is not None}
        if not changes:
            raise UserInputError("Tell me at least one setting to change.")
        assert interaction.guild_id is not None
        await self.bot.service.update_guild_settings(interaction.guild_id, **changes)
        await send_ephemeral(interaction, "✅ Saved.\n" + await settings_text(self.bot, interaction.guild_id))

    @settings_group.command(name="models", description="Choose which models members may use")
    @app_commands.describe(models="Comma-separated model names, or 'all'")
    async def settings_models(self, interaction: discord.Interaction, models: str) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        names = () if models.strip().lower() == "all" else tuple(m.strip() for m in models.split(",") if m.strip())
        assert interaction.guild_id is not None
        await self.bot.service.update_guild_settings(interaction.guild_id, enabled_models=names)
        await send_ephemeral(interaction, "✅ Saved.\n" + await settings_text(self.bot, interaction.guild_id))

    @settings_group.command(name="channel", description="Allow or disallow jamgen in a channel")
    @app_commands.describe(channel="The channel", allowed="Allow jams here (with no allowed channel, all are)")
    async def settings_channel(
        self, interaction: discord.Interaction, channel: discord.TextChannel, allowed: bool
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        await self.bot.service.set_channel_allowed(interaction.guild_id, channel.id, allowed)
        await send_ephemeral(interaction, "✅ Saved.\n" + await settings_text(self.bot, interaction.guild_id))

    @settings_group.command(name="tier", description="Give a role its own daily budget")
    @app_commands.describe(role="The role", seconds="Seconds of music per day (leave out to remove the tier)")
    async def settings_tier(
        self,
        interaction: discord.Interaction,
        role: discord.Role,
        seconds: app_commands.Range[int, 0, 1_000_000] | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        await self.bot.service.set_role_tier(interaction.guild_id, role.id, seconds)
        await send_ephemeral(interaction, "✅ Saved.\n" + await settings_text(self.bot, interaction.guild_id))

    # ------------------------------------------------------------- quotas
    @quota_group.command(name="set", description="Set a member's daily budget (leave out seconds to clear)")
    async def quota_set(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        seconds: app_commands.Range[int, 0, 1_000_000] | None = None,
        unlimited: bool | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        await self.bot.service.set_user_budget(interaction.guild_id, member.id, seconds, unlimited=unlimited)
        await send_ephemeral(interaction, f"✅ {member.mention}'s budget updated.")

    @quota_group.command(name="grant", description="Give a member extra seconds for today")
    async def quota_grant(
        self, interaction: discord.Interaction, member: discord.Member, seconds: app_commands.Range[int, 1, 1_000_000]
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        await self.bot.service.grant(interaction.guild_id, member.id, seconds, by=interaction.user.id)
        await send_ephemeral(interaction, f"✅ Granted {seconds} s to {member.mention} for today.")

    @quota_group.command(name="reset", description="Give a member back today's usage")
    async def quota_reset(self, interaction: discord.Interaction, member: discord.Member) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        await self.bot.service.reset_quota(interaction.guild_id, member.id)
        await send_ephemeral(interaction, f"✅ {member.mention}'s usage today was reset.")

    # ------------------------------------------------------------- blocks, status, sync
    @app_commands.command(name="block", description="Stop a member from using jamgen")
    async def block(self, interaction: discord.Interaction, member: discord.Member, reason: str = "") -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self.bot.service.block_user(member.id, reason[:200])
        await send_ephemeral(interaction, f"⛔ {member.mention} is blocked.")

    @app_commands.command(name="unblock", description="Let a blocked member use jamgen again")
    async def unblock(self, interaction: discord.Interaction, member: discord.Member) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self.bot.service.unblock_user(member.id)
        await send_ephemeral(interaction, f"✅ {member.mention} is unblocked.")

    @app_commands.command(name="status", description="Device, loaded models, queue, failures, uptime")
    async def status(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        s = await self.bot.service.status()
        failures = "\n".join(f"`{job_id}`: {clip(message, 80)}" for job_id, message in s.recent_failures[-5:]) or "none"
        engine = (
            f"**Engine:** {'up' if s.engine.alive else 'DOWN'} on {s.engine.device} · "
            f"loaded: {', '.join(s.engine.loaded_models) or 'nothing'} · restarts: {s.engine.restarts}\n"
        )
        if len(s.engines) != 1:  # a pool: every engine, where it runs, busy or idle
            lines = "\n".join(
                f"{e.number}. {e.where} · {'up' if e.health.alive else 'DOWN'} on {e.health.device} · "
                f"{'busy' if e.busy else 'idle'} · {', '.join(e.health.loaded_models) or 'nothing loaded'} · "
                f"{e.batches} batches · restarts: {e.health.restarts}"
                for e in s.engines
            )
            engine = f"**Engines ({len(s.engines)}):**\n{lines or 'none reachable'}\n"
        text = (
            engine + f"**Queue:** {s.queued} waiting, {s.running} running\n"
            f"**Uptime:** {s.uptime_s / 3600:.1f} h\n**Recent failures:**\n{failures}"
        )
        await send_ephemeral(interaction, clip(text, 1990))

    @app_commands.command(name="sync", description="Re-sync slash commands with Discord (bot owner only)")
    async def sync(self, interaction: discord.Interaction) -> None:
        if not await self.bot.is_owner(interaction.user):
            raise app_commands.CheckFailure("owner only")
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self.bot.sync_commands(force=True)
        await send_ephemeral(interaction, "✅ Commands synced.")


async def setup(bot: JamBot) -> None:
    """Load the cog with admin-only default permissions."""
    cog = Admin(bot)
    group = cog.app_command
    assert group is not None  # a GroupCog always has its group
    group.default_permissions = ADMIN_PERMS
    group.guild_only = True
    await bot.add_cog(cog)
