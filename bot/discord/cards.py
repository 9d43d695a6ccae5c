"""Take cards: a delivery as one Components V2 message (IS_COMPONENTS_V2), one container per take.

Each container holds the take's text (prompt, recipe, a small "-# job <id>" line that ``job_id_of`` and
redelivery read), its waveform in a media gallery, its MP3 as a file component and its buttons. The buttons
are the very ``DynamicItem``s of ``result_view`` (same custom_ids), so they work after a restart as before.
Discord allows 40 components in such a message (nested ones count) and 4000 characters of text in all.
"""

from __future__ import annotations

from typing import Any

import discord

from bot.discord.render import COLOUR, clip
from bot.service import Delivery, RenderedTake

# docs: components/reference.mdx, "Messages allow up to 40 total components"; text displays share 4000 characters.
MAX_COMPONENTS = 40
MAX_TEXT = 4000
CARD_STYLES = ("v2", "classic")


def header_text(user_id: int, takes: int) -> str:
    """The line that mentions the member (the first card's text begins with it, so the member is pinged)."""
    return f"<@{user_id}> here's your take." if takes == 1 else f"<@{user_id}> here are your takes."


def recipe_text(delivery: Delivery, take: RenderedTake, parent_url: str | None) -> str:
    """The recipe of one take in a line, as the classic card's fields say it, then the job line."""
    job = delivery.job
    parts = [
        f"**Model** {job.model}",
        f"**Mode** {job.mode}",
        f"**Duration** {take.duration:.1f} s",
        f"**Seed** {take.seed}",
        f"**Tempo** {f'{take.bpm:.0f} BPM' if take.bpm else '—'}",
    ]
    if take.key:
        parts.append(f"**Key** {take.key}")
    parts.append(f"**Made in** {delivery.generation_s:.1f} s")
    if job.parent_id:
        parts.append(f"**From** [`{job.parent_id}`]({parent_url})" if parent_url else f"**From** `{job.parent_id}`")
    return " · ".join(parts) + f"\n-# job {job.id} · take {take.index + 1}/{job.takes} · by jamgen"


def _title(delivery: Delivery, take: RenderedTake, limit: int) -> str:
    job = delivery.job
    # One line: a prompt's own line breaks could otherwise forge the card's "-# job" line.
    title = clip(" ".join(job.prompt.split()), limit) if job.prompt else f"{job.mode} take"
    return title if len(delivery.takes) == 1 else f"Take {take.index + 1}: {title}"


def _split_buttons(buttons: discord.ui.View, takes: int) -> tuple[list[discord.ui.Item[Any]], list[list[Any]]]:
    """The classic view's buttons: row 0 is the job's (reroll, recipe, delete), row k+1 is take k's."""
    job_row: list[discord.ui.Item[Any]] = []
    per_take: list[list[discord.ui.Item[Any]]] = [[] for _ in range(takes)]
    for item in buttons.children:
        row = item.row or 0
        if row == 0:
            job_row.append(item)
        elif row - 1 < takes:
            per_take[row - 1].append(item)
    return job_row, per_take


def _count(delivery: Delivery, per_take: int, job_buttons: int) -> int:
    """Components of a card: per take container, text, gallery (with a waveform), file, and a row of buttons."""
    total = 0
    for take in delivery.takes:
        total += 3 + (1 if take.waveform_path is not None else 0) + (1 + per_take if per_take else 0)
    return total + (1 + job_buttons if job_buttons else 0)


def _row(items: list[discord.ui.Item[Any]]) -> discord.ui.ActionRow[Any]:
    row: discord.ui.ActionRow[Any] = discord.ui.ActionRow()
    for item in items:
        item.row = None  # a layout row, not the classic view's numbered rows
        row.add_item(item)
    return row


def take_card(
    delivery: Delivery, parent_url: str | None, header: str, buttons: discord.ui.View
) -> discord.ui.LayoutView:
    """The V2 message of a delivery.

    Args:
        delivery: the finished job and its takes.
        parent_url: jump link to the parent take's message, if any.
        header: the first card's first line(s): the member's mention (and a jam take's place).
        buttons: ``result_view``'s buttons for this job (row 0: the job's, row k+1: take k's).
    """
    takes = len(delivery.takes)
    job_row, per_take = _split_buttons(buttons, takes)
    keep = max((len(row) for row in per_take), default=0)
    # Degrade rather than exceed the 40 components: fewer buttons per take (the last ones go first).
    while keep and _count(delivery, keep, len(job_row)) > MAX_COMPONENTS:
        keep -= 1
    for title_limit in (200, 60, 20):
        view = _build(delivery, parent_url, clip(header, 1000), job_row, [row[:keep] for row in per_take], title_limit)
        if view.content_length() <= MAX_TEXT:
            break
    return view


def _build(
    delivery: Delivery,
    parent_url: str | None,
    header: str,
    job_row: list[discord.ui.Item[Any]],
    per_take: list[list[discord.ui.Item[Any]]],
    title_limit: int,
) -> discord.ui.LayoutView:
    view = discord.ui.LayoutView(timeout=None)
    single = len(delivery.takes) == 1
    for position, take in enumerate(delivery.takes):
        text = f"### {_title(delivery, take, title_limit)}\n{recipe_text(delivery, take, parent_url)}"
        if position == 0:
            text = f"{header}\n{text}"
        container: discord.ui.Container[Any] = discord.ui.Container(accent_colour=COLOUR)
        container.add_item(discord.ui.TextDisplay(text))
        if take.waveform_path is not None:
            picture = discord.MediaGalleryItem(
                f"attachment://{take.waveform_path.name}", description=f"Waveform of take {take.index + 1}"
            )
            container.add_item(discord.ui.MediaGallery(picture))
        container.add_item(discord.ui.File(f"attachment://{take.path.name}"))
        if per_take[position]:
            container.add_item(_row(list(per_take[position])))
        if single and job_row:
            container.add_item(_row(list(job_row)))
        view.add_item(container)
    if not single and job_row:
        view.add_item(_row(list(job_row)))
    return view
