"""discord.py extensions of jamgen: one cog per feature, each with ``async def setup(bot)``."""
