"""jamgen on Discord: the one part of ``bot/`` that imports discord.

- ``bot``: the client (``JamBot``), its wiring, command sync, ``build_bot`` and ``run_bot``.
- ``delivery``: posting finished takes, and the member's progress message while a job runs.
- ``render``: receipts, progress, result cards, recipes, the cards of a jam.
- ``interactions``: answering interactions, who is asking, permission checks, attachments, submits.
- ``views``: the persistent buttons and the views that carry them.
- ``remix``: the remix modal and reply-to-remix.
- ``jams``: loops, reactions and each take's place in its jam.

The slash commands, the context menu and the listeners are the extensions in ``cogs/``.
"""

from bot.discord.bot import JamBot, build_bot, run_bot

__all__ = ["JamBot", "build_bot", "run_bot"]
