#!/usr/bin/env python3
"""Draw docs/img/take-card.svg, the README's picture of a take card, from the component tree the bot sends.

``docs/img/take-card.json`` is that tree for a made-up delivery (placeholder ids, built by the real
``bot.discord.cards.take_card`` with the real buttons); the SVG is drawn from the JSON alone, in pure
Python, with a waveform from jamgen's own ``bot.audio.waveform_png``. tests/cogs/test_cards.py delivers a
take through the fake Discord and checks that the tree it received, normalised to these placeholders, is
this JSON, and draws to this SVG: after a change to the card, run this script again.

    .venv/bin/python scripts/render_card.py
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import sys
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

JSON_OUT = ROOT / "docs" / "img" / "take-card.json"
SVG_OUT = ROOT / "docs" / "img" / "take-card.svg"

# The made-up delivery's placeholders (tests/cogs/test_cards.py normalises a real delivery to them).
JOB_ID = "a1b2c3d4"
USER_ID = 123456789012345678
PROMPT = "lofi hip hop, 80 bpm, mellow piano"
RECIPE = "**Model** small · **Mode** text · **Duration** 12.0 s · **Seed** 421337 · **Tempo** 80 BPM · **Key** A minor"
MADE_IN = "**Made in** 9.8 s"
SIZES = {".mp3": 293_112, ".png": 6_318}

WIDTH = 640
FONT = "gg sans, Noto Sans, Helvetica, Arial, sans-serif"
BUTTON_COLOURS = {1: "#5865f2", 2: "#4e5058", 3: "#248046", 4: "#da373c", 5: "#4e5058"}


# ---------------------------------------------------------------------- the tree
def demo_delivery(folder: Path, takes: int = 1) -> Any:
    """The made-up delivery of the picture (its files are empty: the card only names them)."""
    from bot.service import Delivery, Job, JobState, RenderedTake

    now = datetime(2026, 1, 1, tzinfo=UTC)
    job = Job(
        id=JOB_ID, seq=1, user_id=USER_ID, guild_id=1, channel_id=2, mode="text", model="small", prompt=PROMPT,
        params={}, takes=takes, seed=None, parent_id=None, session_id=None, state=JobState.RENDERED, attempts=1,
        error=None, outputs=[], cost=12.0, priority=0, interaction_id=None, request_message_id=None,
        reply_to_message_id=None, progress_message_id=None, delivered_message_ids=[], extra={}, created_at=now,
        started_at=now, rendered_at=now, delivered_at=None, finished_at=None, outputs_cleared_at=None,
    )  # fmt: skip
    rendered = []
    for index in range(takes):
        mp3, png = folder / f"{JOB_ID}-take{index + 1}.mp3", folder / f"{JOB_ID}-take{index + 1}.png"
        mp3.write_bytes(b"")
        png.write_bytes(b"")
        take = RenderedTake(index, mp3, png, seed=421337, duration=12.0, bpm=80.0, key="A minor", bitrate_kbps=192)
        rendered.append(take)
    return Delivery(job=job, takes=rendered, recipe={}, generation_s=9.8)


async def card_document() -> dict[str, Any]:
    """The message the bot sends for the made-up delivery: flags, components and attachments."""
    from bot.discord.cards import header_text, take_card
    from bot.discord.render import result_files
    from bot.discord.views import result_view

    with tempfile.TemporaryDirectory() as tmp:
        delivery = demo_delivery(Path(tmp))
        view = take_card(delivery, None, header_text(USER_ID, 1), result_view(delivery.job, 1))
        names = [file.filename or "" for file in result_files(delivery)]
    attachments = [{"id": i, "filename": name, "size": SIZES[Path(name).suffix]} for i, name in enumerate(names)]
    return {"flags": 1 << 15, "components": view.to_components(), "attachments": attachments}


# ---------------------------------------------------------------------- the picture
def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for raw in text.split("\n"):
        line = ""
        for word in raw.split(" "):
            if line and len(_plain(line + " " + word)) > width:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
    return lines


def _plain(text: str) -> str:
    text = re.sub(r"\[`?([^\]`]*)`?\]\([^)]*\)", r"\1", text)
    return text.replace("**", "").replace("`", "")


def _spans(line: str) -> str:
    """One line of Discord markdown as SVG tspans: **bold**, `code`, <@mentions>, [links](url)."""
    out = []
    for part in re.split(r"(\*\*[^*]+\*\*|`[^`]+`|<@\d+>|\[[^\]]+\]\([^)]+\))", line):
        if not part:
            continue
        if part.startswith("**"):
            out.append(f'<tspan font-weight="700">{escape(part[2:-2])}</tspan>')
        elif part.startswith("<@"):
            out.append('<tspan fill="#c9cdfb" font-weight="600">@member</tspan>')
        elif part.startswith("["):
            out.append(f'<tspan fill="#00a8fc">{escape(_plain(part))}</tspan>')
        elif part.startswith("`"):
            out.append(f'<tspan font-family="monospace">{escape(part[1:-1])}</tspan>')
        else:
            out.append(escape(part))
    return "".join(out)


def _size(size: int | None) -> str:
    if size is None:
        return ""
    return f"{size / 1024:.2f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.2f} MB"


class _Canvas:
    def __init__(self, images: Mapping[str, str], sizes: Mapping[str, int]) -> None:
        self.parts: list[str] = []
        self.y = 0
        self.images = images
        self.sizes = sizes

    def text(self, content: str, x: int, width: int) -> None:
        for raw in content.split("\n"):
            size, colour, weight, line = 15, "#dbdee1", "400", raw
            if raw.startswith("### "):
                size, weight, line = 18, "700", raw[4:]
            elif raw.startswith("-# "):
                size, colour, line = 12, "#949ba4", raw[3:]
            for row in _wrap(line, int(width / (size * 0.6))):
                self.y += int(size * 1.4)
                self.parts.append(
                    f'<text x="{x}" y="{self.y}" font-size="{size}" fill="{colour}" font-weight="{weight}">'
                    f"{_spans(row)}</text>"
                )
        self.y += 6

    def gallery(self, component: dict[str, Any], x: int, width: int) -> None:
        for item in component.get("items", []):
            name = str(item["media"]["url"]).removeprefix("attachment://")
            height = width // 5
            href = self.images.get(name, "")
            alt = escape(item.get("description") or "")
            self.parts.append(
                f'<rect x="{x}" y="{self.y + 4}" width="{width}" height="{height}" rx="8" fill="#1e1f22"/>'
                f'<image x="{x}" y="{self.y + 4}" width="{width}" height="{height}" href="{href}"'
                f' preserveAspectRatio="none"><title>{alt}</title></image>'
            )
            self.y += height + 10

    def file(self, component: dict[str, Any], x: int, width: int) -> None:
        name = str(component["file"]["url"]).removeprefix("attachment://")
        self.parts.append(
            f'<rect x="{x}" y="{self.y + 4}" width="{width}" height="56" rx="8" fill="#2b2d31" stroke="#1e1f22"/>'
            f'<text x="{x + 14}" y="{self.y + 40}" font-size="24">🎵</text>'
            f'<text x="{x + 52}" y="{self.y + 28}" font-size="15" fill="#00a8fc">{escape(name)}</text>'
            f'<text x="{x + 52}" y="{self.y + 47}" font-size="12" fill="#949ba4">'
            f"{_size(self.sizes.get(name))}</text>"
        )
        self.y += 66

    def row(self, component: dict[str, Any], x: int) -> None:
        left = x
        for button in component.get("components", []):
            label = " ".join(p for p in ((button.get("emoji") or {}).get("name"), button.get("label")) if p)
            width = 24 + int(len(label) * 8.2)
            colour = BUTTON_COLOURS.get(int(button.get("style", 2)), "#4e5058")
            self.parts.append(
                f'<rect x="{left}" y="{self.y + 6}" width="{width}" height="32" rx="8" fill="{colour}"/>'
                f'<text x="{left + width // 2}" y="{self.y + 27}" font-size="14" fill="#ffffff" font-weight="500"'
                f' text-anchor="middle">{escape(label)}</text>'
            )
            left += width + 8
        self.y += 42

    def component(self, component: dict[str, Any], x: int, width: int) -> None:
        kind = component.get("type")
        if kind == 17:
            top = self.y + 8
            index = len(self.parts)
            self.y = top + 6
            for child in component.get("components", []):
                self.component(child, x + 18, width - 30)
            self.y += 12
            colour = f"#{int(component.get('accent_color') or 0x4E5058):06x}"
            self.parts[index:index] = [
                f'<rect x="{x}" y="{top}" width="{width}" height="{self.y - top}" rx="8" fill="#2b2d31"'
                ' stroke="#1e1f22"/>',
                f'<rect x="{x}" y="{top}" width="4" height="{self.y - top}" fill="{colour}"/>',
            ]
        elif kind == 10:
            self.text(str(component.get("content", "")), x, width)
        elif kind == 12:
            self.gallery(component, x, width)
        elif kind == 13:
            self.file(component, x, width)
        elif kind == 1:
            self.row(component, x)
        elif kind == 14:
            self.y += 12


def render_svg(document: Mapping[str, Any], images: Mapping[str, str]) -> str:
    """The picture of a message from its component tree.

    Args:
        document: ``{"components": [...], "attachments": [{"filename", "size"}]}`` as in take-card.json.
        images: data URIs of the pictures the tree names, by file name.
    """
    sizes = {a["filename"]: a.get("size") for a in document.get("attachments", [])}
    canvas = _Canvas(images, sizes)
    canvas.y = 34
    for component in document.get("components", []):
        canvas.component(component, 72, WIDTH - 90)
    height = canvas.y + 20
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}"'
        f' font-family="{FONT}">\n'
        f'<rect width="{WIDTH}" height="{height}" fill="#313338"/>\n'
        '<circle cx="36" cy="32" r="20" fill="#7c5cff"/>'
        '<text x="36" y="38" font-size="18" text-anchor="middle">🎶</text>\n'
        '<text x="72" y="26" font-size="16" font-weight="600" fill="#f2f3f5">jamgen</text>'
        '<rect x="138" y="13" width="30" height="16" rx="4" fill="#5865f2"/>'
        '<text x="153" y="25" font-size="10" font-weight="700" fill="#ffffff" text-anchor="middle">APP</text>'
        '<text x="176" y="26" font-size="12" fill="#949ba4">Today at 21:04</text>\n'
    )
    return head + "\n".join(canvas.parts) + "\n</svg>\n"


def image_uris(svg: str) -> dict[str, str]:
    """The data URIs a drawn picture embeds, by file name (so a test can draw a tree with the same pictures)."""
    found = re.findall(r'href="(data:image/png;base64,[^"]+)" preserveAspectRatio="none"><title>[^<]*</title>', svg)
    return {f"{JOB_ID}-take1.png": found[0]} if found else {}


async def waveform_uri() -> str:
    """A waveform drawn by jamgen's own code from the mock-up's synthetic beat."""
    from bot.audio import waveform_png

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from render_mockup import synthetic_beat

    with tempfile.TemporaryDirectory() as tmp:
        path = await waveform_png(synthetic_beat(), 32000, Path(tmp) / "wave.png", width=800, height=160)
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


async def main() -> None:
    document = await card_document()
    JSON_OUT.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    images = {f"{JOB_ID}-take1.png": await waveform_uri()}
    SVG_OUT.write_text(render_svg(document, images))
    print(f"wrote {JSON_OUT.relative_to(ROOT)} and {SVG_OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    asyncio.run(main())
