"""Stems on Discord: the requests, the buttons under stems, and the stems a bounce of some stems needs.

Asking is ``ask_for_stems`` (``interactions.py``): a take's stems are made once, and asking again for
a take whose stems are waiting, running or posted answers at once with where they are, free. Each
stem message carries, per stem, buttons that open the remix form with that stem as the input, so the
lineage reads "from the drums of k7m2q9xa". Their cards are drawn in ``render.py``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord

from bot.discord.interactions import bot_of, member_context
from bot.discord.remix import open_remix_form
from bot.discord.render import STEM_EMOJI, clip
from bot.engine.types import STEM_NAMES
from bot.errors import JamgenError
from bot.service import AudioInput, JamRequest, Mode, Receipt, RenderedTake
from bot.service.bounce import StemsMissingError

if TYPE_CHECKING:
    from bot.discord.bot import JamBot

# The three ways to jam on a stem: the remix form's mode (also in the custom_id) and the button's label.
STEM_REMIXES = {"continue": "Continue from", "melody": "Melody from", "style": "Style from"}


async def stems_request_for(bot: JamBot, interaction: discord.Interaction, job_id: str, take: int) -> JamRequest:
    """The stems request of take ``take`` of ``job_id``, asked for by the interaction's member."""
    return await bot.service.stems_request(job_id, take, **member_context(interaction))


def attachment_stems_request(interaction: discord.Interaction, data: bytes, filename: str) -> JamRequest:
    """The stems request of an uploaded file."""
    return JamRequest(**member_context(interaction), mode=Mode.STEMS, audio=AudioInput(data=data, filename=filename))


# ---------------------------------------------------------------------- buttons
class StemRemixButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"^jamgen:stemmix:(?P<how>continue|melody|style):(?P<job>[a-z0-9]{4,16}):(?P<stem>[0-3])$",
):
    """*Continue from / Melody from / Style from* a stem: the remix form with that stem as the input."""

    def __init__(self, how: str, job_id: str, index: int, stem: str) -> None:
        label = STEM_REMIXES[how]
        super().__init__(
            discord.ui.Button(
                label=f"{label} {stem}",
                emoji=STEM_EMOJI.get(stem),
                style=discord.ButtonStyle.primary if how == "continue" else discord.ButtonStyle.secondary,
                custom_id=f"jamgen:stemmix:{how}:{job_id}:{index}",
            )
        )
        self.how = how
        self.job_id = job_id
        self.index = index

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> StemRemixButton:
        index = int(match.group("stem"))
        name = STEM_NAMES[index] if index < len(STEM_NAMES) else "stem"
        return cls(match.group("how"), match.group("job"), index, name)

    async def callback(self, interaction: discord.Interaction) -> None:
        await open_remix_form(bot_of(interaction), interaction, self.job_id, self.index, default_mode=self.how)


# ---------------------------------------------------------------------- the stems' buttons
def stems_view(job_id: str, stems: list[RenderedTake]) -> discord.ui.View:
    """One row per stem: continue from it, melody from it, style from it."""
    view = discord.ui.View(timeout=None)
    for row, stem in enumerate(stems):
        for how in STEM_REMIXES:
            button = StemRemixButton(how, job_id, stem.index, stem.stem or "stem")
            button.item.row = row
            view.add_item(button)
    return view


# ---------------------------------------------------------------------- a bounce of some stems
async def split_for_bounce(bot: JamBot, interaction: discord.Interaction, missing: StemsMissingError) -> str:
    """Ask for the stems of the chain's takes that have none (charged like any stems), and say what happens."""
    started: list[Receipt] = []
    underway: list[str] = []
    refused: list[str] = []
    for job_id, take in missing.missing:
        try:
            if await bot.service.find_stems(job_id, take) is not None:
                underway.append(job_id)
                continue
            request = await stems_request_for(bot, interaction, job_id, take)
            started.append(await bot.service.submit(request))
        except JamgenError as exc:
            refused.append(f"`{job_id}`: {exc.message}")
    lines = [f"🎚 {missing.message}"]
    if started:
        cost = sum(receipt.cost for receipt in started)
        lines.append(
            f"Splitting {len(started)} of them now ({cost:g} s of quota); they are posted here as they are made."
        )
    if underway:
        lines.append(f"Already being split: {', '.join(f'`{j}`' for j in underway)}.")
    if refused:
        lines.append("Could not start: " + "; ".join(refused))
    lines.append("Run `/session bounce` again once every take has its stems.")
    return clip("\n".join(lines), 1900)
