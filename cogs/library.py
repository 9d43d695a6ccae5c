"""/queue, /jobs, /show, /cancel, /quota and /help: what members look up."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.bot import JamBot
from bot.discord.interactions import member_context, send_ephemeral, server_of
from bot.discord.render import COLOUR, clip, message_url
from bot.service.recipes import Recipe

HELP_TEXT = """\
**Making music with jamgen**
`/generate prompt` makes a track from words. `/melody` follows a tune you attach, `/style` borrows the \
feel of a short excerpt, `/continue` carries on from where a file ends. Reply to any jamgen track (or \
mention jamgen in a reply to a message with audio) to remix it; start the reply with `melody:`, \
`style:` or `continue:` to pick how, or `bass:` (drums, other, vocals) to remix one stem; `/remix` opens a \
form that also takes your own clip. 🎚 **Stems** (or `/stems`) splits a take or a file into drums, bass, \
other and vocals. `/session start` opens a jam thread with a shared tempo and key; \
`/session tree`, `/session bounce` and `/session end` follow the jam.

**Prompting.** Say what a musician would need: genre and era (*90s boom bap*, *baroque*), \
instruments (*upright bass, brushed drums, rhodes*), mood (*melancholic, uplifting*), tempo in BPM \
(*92 bpm*), time signature (*in 3/4*), key (*in D minor*) and production words (*lo-fi, warm tape \
saturation, wide stereo*). Short, concrete prompts beat long stories.

**The knobs.** Each step the model picks the next piece of audio from a list of candidates:
• **top_k** keeps only the k likeliest candidates (default 250). Lower = safer and more repetitive.
• **top_p** instead keeps the smallest set whose chances add up to p (e.g. 0.9); 0 turns it off. \
When set, it replaces top_k.
• **temperature** flattens (>1, wilder) or sharpens (<1, safer) the chances before picking.
• **cfg** (classifier-free guidance) is how strongly the prompt pulls the music: 3 is balanced, higher \
follows the words more literally but can sound harsh, lower drifts. Style takes use double guidance: \
**cfg** pulls toward the excerpt and text together, **cfg_beta** (default 5) pushes the text beyond the excerpt.
• **seed** makes a take repeatable: same recipe and seed → same take.
"""


class Library(commands.Cog):
    """Members' look-ups."""

    def __init__(self, bot: JamBot) -> None:
        self.bot = bot

    @app_commands.command(name="queue", description="See the queue and your place in it")
    async def queue(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        rows = self.bot.service.queue_overview()
        if not rows:
            await send_ephemeral(interaction, "The queue is empty: your next take starts right away.")
            return
        lines = []
        for place, job_id, user_id in rows[:20]:
            you = " ← you" if user_id == interaction.user.id else ""
            where = "now playing" if place == 0 else f"#{place}"
            lines.append(f"`{where:>11}` `{job_id}` <@{user_id}>{you}")
        mine = [place for place, _, user_id in rows if user_id == interaction.user.id]
        header = f"**{len(rows)} job(s) waiting or running.**"
        if mine:
            header += f" Your first job is {'running' if mine[0] == 0 else f'at #{mine[0]}'}."
        await send_ephemeral(interaction, header + "\n" + "\n".join(lines))

    @app_commands.command(name="jobs", description="Your recent jobs")
    async def jobs(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        jobs = await self.bot.service.user_jobs(interaction.user.id, server_of(interaction))
        if not jobs:
            await send_ephemeral(interaction, "You have no jobs yet. Try `/generate`.")
            return
        lines = [
            f"`{job.id}` · {job.state.value} · {job.model} · {clip(job.prompt or job.mode, 60)}" for job in jobs[:15]
        ]
        await send_ephemeral(interaction, "**Your recent jobs**\n" + "\n".join(lines))

    @app_commands.command(name="show", description="Recipe and lineage of a job")
    @app_commands.describe(job_id="The job's id (shown under every take)")
    async def show(self, interaction: discord.Interaction, job_id: app_commands.Range[str, 4, 16]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        job = await self.bot.service.job(job_id.strip().lower())
        lineage = await self.bot.service.lineage(job.id)
        children = await self.bot.service.children(job.id)
        embed = discord.Embed(title=f"Job {job.id}", description=clip(job.prompt or "(no prompt)", 500), colour=COLOUR)
        embed.add_field(name="State", value=job.state.value)
        embed.add_field(name="Model", value=job.model)
        embed.add_field(name="Mode", value=job.mode)
        embed.add_field(name="By", value=f"<@{job.user_id}>")
        recipe = Recipe.from_job(job)
        embed.add_field(name="Duration", value=f"{recipe.duration:g} s")
        if recipe.audio is not None and recipe.audio.stem:
            source = f"`{recipe.audio.stem_of}`" if recipe.audio.stem_of else "an uploaded file"
            embed.add_field(name="From", value=f"from the {recipe.audio.stem} of {source}")
        seeds = [str(t.get("seed")) for t in (job.extra or {}).get("takes", [])] or [str(job.seed or "random")]
        embed.add_field(name="Seed", value=", ".join(seeds))
        chain = " → ".join(f"`{j.id}`" for j in lineage)
        embed.add_field(name="Lineage", value=clip(chain, 1000) or "—", inline=False)
        if children:
            embed.add_field(name="Remixes", value=clip(", ".join(f"`{c.id}`" for c in children), 1000), inline=False)
        url = message_url(
            job.guild_id, job.channel_id, job.delivered_message_ids[0] if job.delivered_message_ids else None
        )
        if url:
            embed.add_field(name="Link", value=url, inline=False)
        await interaction.followup.send(embed=embed, ephemeral=True)

    @app_commands.command(name="cancel", description="Cancel one of your queued or running jobs")
    @app_commands.describe(job_id="The job's id")
    async def cancel(self, interaction: discord.Interaction, job_id: app_commands.Range[str, 4, 16]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        context = member_context(interaction)
        job = await self.bot.service.cancel(job_id.strip().lower(), context["user_id"], is_admin=context["is_admin"])
        await send_ephemeral(interaction, f"🛑 Cancelling `{job.id}`. Anything not yet made is refunded.")

    @app_commands.command(name="quota", description="How much music you can still make today")
    async def quota(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        context = member_context(interaction)
        status = await self.bot.service.quota(context["user_id"], context["guild_id"], context["role_ids"])
        if status.unlimited:
            text = "You have no limit here. ♾️"
        else:
            reset = discord.utils.format_dt(status.resets_at, "R")
            text = (
                f"**{status.remaining:g} s** of music left today (used {status.used:g} s of {status.budget:g} s"
                + (f", plus {status.granted:g} s granted" if status.granted else "")
                + f"). Resets {reset} (midnight UTC)."
            )
        await send_ephemeral(interaction, text)

    @app_commands.command(name="help", description="How to use jamgen and how to prompt it")
    async def help(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(HELP_TEXT, ephemeral=True)


async def setup(bot: JamBot) -> None:
    """Load the cog."""
    await bot.add_cog(Library(bot))
