"""Take cards (Components V2) end to end, the classic style, and the README picture drawn from the real tree."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.fakediscord.records import walk_components
from tests.harness import job_id_of, wait_for_take, wait_state

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS_V2 = 1 << 15
RECIPE_LINE = re.compile(
    r"\*\*Model\*\* \S+ · \*\*Mode\*\* \S+ · \*\*Duration\*\* [\d.]+ s · \*\*Seed\*\* \d+ · "
    r"\*\*Tempo\*\* (?:\d+ BPM|—)(?: · \*\*Key\*\* [^·\n]+)? · \*\*Made in\*\* [\d.]+ s"
)


def render_card() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_card", ROOT / "scripts" / "render_card.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def normalised(message: Any, job_id: str, user_id: int, script: ModuleType) -> dict[str, Any]:
    """The tree the fake received, with this delivery's variable parts replaced by the picture's placeholders."""
    raw = message.raw
    attachments = [
        {"id": entry["id"], "filename": entry["filename"], "size": script.SIZES[Path(entry["filename"]).suffix]}
        for entry in raw["attachments"]
    ]
    text = json.dumps({"flags": raw["flags"], "components": raw["components"], "attachments": attachments})
    text = text.replace(job_id, script.JOB_ID).replace(f"<@{user_id}>", f"<@{script.USER_ID}>")
    document = json.loads(text)
    for component in message_texts(document["components"]):
        component["content"], count = RECIPE_LINE.subn(f"{script.RECIPE} · {script.MADE_IN}", component["content"])
        assert count == 1, f"the recipe line changed its shape: {component['content']!r}"
    return document


def message_texts(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for component in components:
        if component.get("type") == 10:
            found.append(component)
        found += message_texts(component.get("components") or [])
    return found


async def test_a_delivered_take_card_is_the_readme_picture(jam):
    script = render_card()
    interaction = await jam.fake.slash("generate", {"prompt": script.PROMPT, "duration": 1})
    message = await wait_for_take(interaction)
    assert message.flags & COMPONENTS_V2
    assert (message.content, message.embeds) == ("", [])
    assert jam.fake.member.id in message.mention_ids, "the member is pinged from the card's text"
    assert sorted(a.filename.rsplit(".", 1)[1] for a in message.attachments) == ["mp3", "png"]

    document = normalised(message, job_id_of(message), jam.fake.member.id, script)
    committed = json.loads((ROOT / "docs" / "img" / "take-card.json").read_text())
    assert document == committed, "the card changed: run .venv/bin/python scripts/render_card.py"
    svg = (ROOT / "docs" / "img" / "take-card.svg").read_text()
    images = script.image_uris(svg)
    assert images, "the picture embeds the waveform"
    assert script.render_svg(committed, images) == svg, "take-card.svg was not drawn from take-card.json"
    assert script.render_svg(document, images) == svg


@pytest.mark.parametrize("world_overrides", [{"JAMGEN_CARD_STYLE": "classic"}])
async def test_the_classic_style_posts_embeds_with_the_files_under_them(jam):
    interaction = await jam.fake.slash("generate", {"prompt": "dub techno", "duration": 1})
    message = await wait_for_take(interaction)
    assert not message.flags & COMPONENTS_V2
    assert f"<@{jam.fake.member.id}>" in message.content
    embed = message.embeds[0]
    assert embed["footer"]["text"].startswith(f"job {job_id_of(message)} ")
    png = next(a.filename for a in message.attachments if a.filename.endswith(".png"))
    assert embed["image"]["url"] == f"attachment://{png}"
    assert any(a.filename.endswith(".mp3") for a in message.attachments)
    assert all(c["type"] == 1 for c in message.components), "classic messages carry action rows only"
    assert {"Reroll", "Recipe", "Delete", "Extend", "Remix"} <= {b.get("label") for b in message.buttons}


async def test_four_takes_share_one_card_message_within_discords_limits(jam):
    interaction = await jam.fake.slash("generate", {"prompt": "four ways", "duration": 1, "takes": 4})
    message = await wait_for_take(interaction)
    containers = [c for c in message.components if c["type"] == 17]
    assert len(containers) == 4
    assert len(message.all_components()) <= 40
    files = [c["file"]["url"] for c in message.all_components() if c["type"] == 13]
    assert files == [f"attachment://{job_id_of(message)}-take{n}.mp3" for n in range(1, 5)]
    assert {b["custom_id"] for b in message.buttons} >= {f"jamgen:extend:{job_id_of(message)}:{n}" for n in range(4)}
    assert sum(len(c.get("content", "")) for c in message.all_components() if c["type"] == 10) <= 4000


async def test_the_buttons_of_a_card_still_work_after_a_restart(jam):
    interaction = await jam.fake.slash("generate", {"prompt": "restart me", "duration": 1})
    take = await wait_for_take(interaction)
    job_id = job_id_of(take)
    await wait_state(jam.store, job_id, "delivered")
    await jam.restart()
    recipe = await jam.fake.click(take, take.button("Recipe")["custom_id"])
    answer = await recipe.wait_for_message(lambda m: "Recipe" in m.content, timeout=10)
    assert job_id in answer.content
    # Delete reads the job id back from the clicked card (render.job_id_of on discord.py's parsed components).
    delete = await jam.fake.click(take, take.button("Delete")["custom_id"])
    await delete.wait_for_response()
    await jam.fake.wait_for(lambda: jam.fake.messages[take.id].deleted, timeout=10)


async def test_a_card_gives_up_buttons_before_it_passes_40_components(tmp_path):
    from bot.discord.cards import header_text, take_card
    from bot.discord.views import LoopButton, result_view

    delivery = render_card().demo_delivery(tmp_path, takes=4)
    buttons = result_view(delivery.job, 4)
    for take in range(4):  # one more button per take than today's card: 4 x 10 + 4 components would be 44
        item = LoopButton(f"{delivery.job.id}x", take)
        item.item.row = take + 1
        buttons.add_item(item)
    view = take_card(delivery, None, header_text(1, 4), buttons)
    tree = view.to_components()
    assert len(list(walk_components(tree))) <= 40
    rows = [[c for c in walk_components([top]) if c["type"] == 2] for top in tree]
    assert [len(row) for row in rows[:4]] == [4, 4, 4, 4], "every take keeps the same first buttons"
    assert [b["label"] for b in rows[-1]] == ["Reroll", "Recipe", "Delete"]
    assert [b["label"] for b in rows[0]] == ["Extend 1", "Remix 1", "Loop 1", "Stems 1"]
    assert view.content_length() <= 4000
