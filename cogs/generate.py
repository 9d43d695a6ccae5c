"""/generate, /melody, /style and /continue: members ask for takes."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.bot import JamBot
from bot.discord.interactions import melody_model_autocomplete, model_autocomplete, sampling_from, submit_command
from bot.engine.types import Mode

MAX_SEED = 2**31 - 1


class Generate(commands.Cog):
    """Slash commands that make new takes."""

    def __init__(self, bot: JamBot) -> None:
        self.bot = bot

    @app_commands.command(name="generate", description="Make music from a text prompt")
    @app_commands.describe(
        prompt="Genre, instruments, mood, tempo… e.g. 'lofi hip hop, 80 bpm, mellow rhodes, vinyl crackle'",
        duration="Seconds of music",
        model="Which model to use",
        takes="How many variations (1-4)",
        seed="Fixed seed to make the same take again",
        top_k="Sample among the k likeliest tokens (default 250)",
        top_p="Sample among tokens covering this probability (0 = off)",
        temperature="Higher is wilder, lower is safer (default 1.0)",
        cfg="How closely to follow the prompt (default 3)",
    )
    @app_commands.autocomplete(model=model_autocomplete)
    async def generate(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, 2000],
        duration: app_commands.Range[int, 1, 300] | None = None,
        model: str | None = None,
        takes: app_commands.Range[int, 1, 4] = 1,
        seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
        top_k: app_commands.Range[int, 0, 2048] | None = None,
        top_p: app_commands.Range[float, 0.0, 1.0] | None = None,
        temperature: app_commands.Range[float, 0.05, 5.0] | None = None,
        cfg: app_commands.Range[float, 0.0, 20.0] | None = None,
    ) -> None:
        await submit_command(
            self.bot,
            interaction,
            mode=Mode.TEXT,
            prompt=prompt,
            duration=duration,
            model=model,
            takes=takes,
            seed=seed,
            sampling=sampling_from(top_k, top_p, temperature, cfg),
        )

    @app_commands.command(name="melody", description="Make music that follows the melody of an audio file")
    @app_commands.describe(
        audio="A hummed, sung or played melody",
        prompt="What it should sound like",
        duration="Seconds of music",
        model="A melody model",
    )
    @app_commands.autocomplete(model=melody_model_autocomplete)
    async def melody(
        self,
        interaction: discord.Interaction,
        audio: discord.Attachment,
        prompt: app_commands.Range[str, 1, 2000],
        duration: app_commands.Range[int, 1, 300] | None = None,
        model: str | None = None,
    ) -> None:
        await submit_command(
            self.bot, interaction, audio, mode=Mode.MELODY, prompt=prompt, duration=duration, model=model
        )

    @app_commands.command(name="style", description="Make music in the style of a short excerpt (MusicGen-Style)")
    @app_commands.describe(
        audio="Music whose style to borrow",
        prompt="Optional text to steer it further",
        duration="Seconds of music",
        excerpt_start="Where the excerpt starts, in seconds (default: the loudest part)",
        excerpt_length="Seconds of excerpt the model listens to (1.5-4.5)",
        eval_q="How closely to copy the style: 1 loose … 6 close (default 3)",
        cfg="Overall guidance toward the excerpt and the text (default 3)",
        cfg_beta="Extra push toward the text, beyond the excerpt (default 5)",
    )
    async def style(
        self,
        interaction: discord.Interaction,
        audio: discord.Attachment,
        prompt: app_commands.Range[str, 0, 2000] = "",
        duration: app_commands.Range[int, 1, 300] | None = None,
        excerpt_start: app_commands.Range[float, 0.0, 3600.0] | None = None,
        excerpt_length: app_commands.Range[float, 1.5, 4.5] = 3.0,
        eval_q: app_commands.Range[int, 1, 6] = 3,
        cfg: app_commands.Range[float, 0.0, 20.0] = 3.0,
        cfg_beta: app_commands.Range[float, 0.0, 20.0] = 5.0,
    ) -> None:
        await submit_command(
            self.bot,
            interaction,
            audio,
            {"start": excerpt_start},
            mode=Mode.STYLE,
            prompt=prompt,
            duration=duration,
            sampling=sampling_from(cfg=cfg, cfg_coef_beta=cfg_beta, eval_q=eval_q, excerpt_length=excerpt_length),
        )

    @app_commands.command(name="continue", description="Continue a piece of audio")
    @app_commands.describe(
        audio="The audio to continue",
        prompt="Where the music should go",
        start="Use the audio from this second (default: the last 10 s)",
        end="Use the audio up to this second (default: the end)",
        duration="Seconds of new music after the part it continues from",
    )
    async def continue_(
        self,
        interaction: discord.Interaction,
        audio: discord.Attachment,
        prompt: app_commands.Range[str, 0, 2000] = "",
        start: app_commands.Range[float, 0.0, 3600.0] | None = None,
        end: app_commands.Range[float, 0.0, 3600.0] | None = None,
        duration: app_commands.Range[int, 1, 300] | None = None,
    ) -> None:
        await submit_command(
            self.bot,
            interaction,
            audio,
            {"start": start, "end": end},
            mode=Mode.CONTINUATION,
            prompt=prompt,
            duration=duration,
        )


async def setup(bot: JamBot) -> None:
    """Load the cog."""
    await bot.add_cog(Generate(bot))
