"""How a jam's tree and a take's place in it read on Discord (``/session tree``, the jam line under a take)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.service.session_rules import MADE_STATES, MAX_THEME_CHARS, clip_text, describe_session, strip_decoration
from bot.service.session_tree import TakePlace, TreeEntry
from bot.service.sessions import Session

TREE_PAGE_CHARS = 1900
MAX_TREE_INDENT = 8
JAM_LINE = "🎶 Jam "
_MODE_ICONS = {"text": "✨", "unconditional": "✨", "continuation": "⏩", "melody": "🎼", "style": "🎨"}
_SHOWN_CHILDREN = 8


def tree_line(entry: TreeEntry, session: Session) -> str:
    """One take as a line: indentation, job id, who, what, tempo.

    Args:
        entry: the take.
        session: its session (its decoration is left out of the prompt snippet).
    """
    job = entry.job
    if entry.depth == 0:
        prefix = ""
    elif entry.depth <= MAX_TREE_INDENT:
        prefix = "\u2003" * (entry.depth - 1) + "└ "
    else:
        prefix = "\u2003" * (MAX_TREE_INDENT - 1) + f"└({entry.depth}) "
    icon = "🎲" if job.mode == "text" and job.parent_id else _MODE_ICONS.get(job.mode, "•")
    words = clip_text(strip_decoration(job.prompt, session), 40) or job.mode
    tempo = f" · {entry.bpm:.0f} BPM" if entry.bpm else ""
    state = " · ⏳" if job.state not in MADE_STATES else ""
    best = " · 🏆" if entry.best else ""
    return f"{prefix}`{job.id}` <@{job.user_id}> {icon} {words}{tempo}{state}{best}"


def render_tree_pages(
    session: Session, entries: Sequence[TreeEntry], *, page_chars: int = TREE_PAGE_CHARS
) -> list[str]:
    """The tree as one or more messages of at most ``page_chars`` characters, each with the header.

    Args:
        entries: from :func:`bot.service.session_tree.build_tree`.
        page_chars: the most characters per page (Discord allows 2000 per message).
    """
    members = len({entry.job.user_id for entry in entries})
    header = (
        f"🎶 **{clip_text(session.theme, MAX_THEME_CHARS)}** · {describe_session(session)} · "
        f"{len(entries)} take{'s' if len(entries) != 1 else ''} by {members} member{'s' if members != 1 else ''}"
    )
    if not entries:
        return [header + "\nNo takes yet: `/generate` here to lay down the first one."]
    room = page_chars - len(header) - 20
    pages: list[list[str]] = [[]]
    used = 0
    for entry in entries:
        line = tree_line(entry, session)
        line = line if len(line) <= room else line[: room - 1] + "…"  # keep the indentation
        if pages[-1] and used + len(line) + 1 > room:
            pages.append([])
            used = 0
        pages[-1].append(line)
        used += len(line) + 1
    if len(pages) == 1:
        return [header + "\n" + "\n".join(pages[0])]
    return [f"{header} · page {n}/{len(pages)}\n" + "\n".join(lines) for n, lines in enumerate(pages, start=1)]


def place_line(place: TakePlace) -> str:
    """A take's place in its jam as the line under its message: number, parent and children."""
    line = f"{JAM_LINE}**{clip_text(place.session.theme, 60)}** · take #{place.number}"
    if place.parent_id:
        line += f" · from `{place.parent_id}`"
    if place.children:
        shown = ", ".join(f"`{c}`" for c in place.children[:_SHOWN_CHILDREN])
        extra = len(place.children) - _SHOWN_CHILDREN
        line += f" · led to {shown}" + (f" and {extra} more" if extra > 0 else "")
    return line
