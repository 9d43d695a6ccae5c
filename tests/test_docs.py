"""The README and docs/ARCHITECTURE.md stay true to the code they describe."""

import ast
import re
import sys
from pathlib import Path

import pytest

from bot.cli import SUBCOMMANDS
from bot.cli.invite import PERMISSIONS, SCOPES, permission_integer
from bot.config import render_example_env, render_reference_markdown
from bot.engine.registry import MODELS
from bot.engine.types import STEM_NAMES, SamplingParams

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
ARCHITECTURE = (ROOT / "docs" / "ARCHITECTURE.md").read_text()

sys.path.insert(0, str(ROOT / "scripts"))
import render_docs  # noqa: E402


def _section(title: str) -> str:
    """The README's text under a ``##`` heading, up to the next one."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.MULTILINE | re.DOTALL)
    assert match, f"README has no section '## {title}'"
    return match.group(1)


def test_readme_opens_with_the_two_commands():
    first_block = README.split("```")[1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()[1:] if line.strip()]
    assert commands == ["make test", "make run"]


def test_the_configuration_reference_and_the_example_env_match_the_settings():
    drifted = [path.name for path, text in render_docs.expected_files(ROOT).items() if path.read_text() != text]
    assert drifted == [], f"{', '.join(drifted)} drifted from bot/config.py: run `{render_docs.COMMAND}`"
    block = README.split(render_docs.START)[1].split(render_docs.END)[0]
    assert render_reference_markdown() in block
    assert render_example_env() + "\n" == (ROOT / "config.example.env").read_text()


def test_the_reference_check_catches_a_changed_default(tmp_path):
    (tmp_path / "README.md").write_text(
        README.replace("| `JAMGEN_MAX_DURATION` | `120` |", "| `JAMGEN_MAX_DURATION` | `60` |")
    )
    (tmp_path / "config.example.env").write_text((ROOT / "config.example.env").read_text())
    expected = render_docs.expected_files(tmp_path)
    assert expected[tmp_path / "README.md"] == README
    assert (tmp_path / "README.md").read_text() != README
    with pytest.raises(ValueError, match="config-reference:start"):
        render_docs.readme_with_reference("no markers here")


def _decorated_names(path: Path) -> list[tuple[str, str]]:
    """(decorator owner, name) of every ``@x.command(name=...)`` in a cog."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "command":
            owner = node.func.value
            owner_name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
            for keyword in node.keywords:
                if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                    found.append((owner_name, keyword.value.value))
    return found


def test_every_slash_command_is_documented_with_an_example():
    commands = _section("Commands")
    names = []
    for cog in sorted((ROOT / "cogs").glob("*.py")):
        for owner, name in _decorated_names(cog):
            prefix = {"settings_group": "/jam settings ", "quota_group": "/jam quota "}.get(owner)
            if prefix is None:
                prefix = {"admin.py": "/jam ", "sessions.py": "/session "}.get(cog.name, "/")
            names.append(prefix + name)
    assert len(names) >= 20
    for name in names:
        rows = [line for line in commands.splitlines() if line.startswith(f"| `{name}` |")]
        assert rows, f"README's Commands section has no table row for {name}"
        assert f"`{name}" in rows[0].split("|")[2], f"the row of {name} has no example"


def test_the_context_menu_the_reply_prefixes_and_every_button_are_documented():
    commands = _section("Commands")
    remix = (ROOT / "cogs" / "remix.py").read_text()
    menu = re.search(r'ContextMenu\(name="([^"]+)"', remix).group(1)
    assert menu in commands
    for word in (
        re.search(r"MODE_WORDS = \{(.*?)\}", (ROOT / "bot" / "discord" / "remix.py").read_text()).group(1).split(",")
    ):
        assert f"`{word.split(':')[0].strip().strip(chr(34))}:`" in commands
    buttons = re.findall(
        r'action, label, emoji(?:, style)? = "\w+", "(\w+)", "([^"]+)"',
        (ROOT / "bot" / "discord" / "views.py").read_text(),
    )
    assert len(buttons) == 8
    for label, emoji in buttons:
        assert f"| {emoji} {label} |" in commands
    stems = (ROOT / "cogs" / "stems.py").read_text()
    assert re.search(r'ContextMenu\(name="([^"]+)"', stems).group(1) in commands
    for stem in STEM_NAMES:
        assert f"`{stem}:`" in commands
    labels = re.findall(r'"(\w+ from)"', (ROOT / "bot" / "discord" / "stems.py").read_text())
    assert len(labels) == 3
    for label in labels:
        assert label in commands


def test_every_cli_subcommand_is_documented():
    for name in SUBCOMMANDS:
        assert f"| `jamgen {name}` |" in README
    assert "| `jamgen models pull` |" in README
    assert "jamgen doctor --quick" in README


def test_the_invite_permissions_are_the_ones_the_readme_lists():
    setup = _section("Create the Discord application")
    for permission in PERMISSIONS:
        assert f"| {permission.name} |" in setup
    assert f"permissions={permission_integer()}" in setup
    for scope in SCOPES:
        assert f"`{scope}`" in setup


def test_the_model_table_matches_the_registry():
    models = _section("Models")
    rows = {line.split("|")[1].strip(" `"): line for line in models.splitlines() if line.startswith("| `")}
    real = {name: spec for name, spec in MODELS.items() if not spec.debug}
    assert set(rows) == set(real)
    for name, spec in real.items():
        cells = [cell.strip() for cell in rows[name].split("|")[1:-1]]
        assert cells[1] == f"{spec.vram_gb:g} GB", name
        # A separator's cost is the stems setting, not a weight of the model.
        assert ("JAMGEN_STEMS_COST" in cells[2]) if spec.separator else cells[2] == f"{spec.cost_weight:g}x", name
        assert cells[4].startswith(spec.blurb), name
        modes = {m.strip() for m in cells[3].split(",")}
        assert modes == {m.value for m in spec.modes if m.value != "unconditional"}, name


def test_the_knobs_table_states_the_real_defaults():
    defaults = SamplingParams()
    rows = {
        line.split("|")[1].strip().split()[0].strip("`"): line for line in README.splitlines() if line.startswith("| `")
    }
    assert rows["top_k"].split("|")[2].strip() == str(defaults.top_k)
    assert rows["top_p"].split("|")[2].strip().startswith(f"{defaults.top_p:g}")
    assert rows["temperature"].split("|")[2].strip() == f"{defaults.temperature}"
    assert rows["cfg"].split("|")[2].strip() == f"{defaults.cfg_coef:g}"
    assert rows["eval_q"].split("|")[2].strip() == str(defaults.eval_q)


def test_the_result_picture_is_a_small_drawing_marked_as_not_a_screenshot():
    match = re.search(r"!\[[^\]]*\]\((docs/img/[^)]+\.svg)\)\n\n\*([^*]+)\*", README)
    assert match, "README needs a picture followed by its caption"
    assert "not a screenshot" in match.group(2).lower()
    picture = (ROOT / match.group(1)).read_text()
    size = re.match(r'<svg [^>]*width="(\d+)" height="(\d+)"', picture)
    assert size, "an SVG with its size"
    assert 400 <= int(size.group(1)) <= 1600
    assert 200 <= int(size.group(2)) <= 1200
    assert len(picture) < 200 * 1024


@pytest.mark.parametrize(("name", "text"), [("README.md", README), ("docs/ARCHITECTURE.md", ARCHITECTURE)])
def test_relative_links_and_named_files_exist(name, text):
    base = (ROOT / name).parent
    links = [link.split("#")[0] for link in re.findall(r"\]\(([^)#][^)]*)\)", text) if "://" not in link]
    assert [link for link in links if not (base / link).exists()] == []
    named = set(re.findall(r"`((?:bot|cogs|scripts|tests|docs)/[\w/.-]+\.(?:py|md|sh|sql))`", text))
    named |= set(re.findall(r"`((?:bot|cogs)/[\w/]+/)`", text))
    assert [path for path in sorted(named) if not (ROOT / path).exists() and "NNNN" not in path] == []


def test_architecture_covers_the_rooms_and_the_life_of_a_job():
    for room in ("cogs/", "bot/service/", "bot/engine/", "bot/audio/", "bot/store/"):
        assert f"| `{room}" in ARCHITECTURE
    steps = re.findall(r"^\s*(\d+)\. \*\*", ARCHITECTURE, re.MULTILINE)
    assert steps == [str(n) for n in range(1, len(steps) + 1)]
    assert len(steps) >= 8
    assert "## Where to change what" in ARCHITECTURE
