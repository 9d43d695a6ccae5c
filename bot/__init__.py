"""jamgen: a self-hosted Discord bot that makes music with MusicGen on one GPU.

The core package imports neither discord nor torch: Discord lives in
``bot.discord`` and ``cogs/``, torch and audiocraft in the engine's worker
process (``bot.engine``).
"""

__version__ = "0.1.0"
