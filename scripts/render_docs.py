#!/usr/bin/env python3
"""Rewrite the generated parts of the docs from bot/config.py's settings definition.

- README.md: the configuration reference between ``<!-- config-reference:start -->`` and
  ``<!-- config-reference:end -->`` (``bot.config.render_reference_markdown()``);
- config.example.env: the whole file (``bot.config.render_example_env()``).

Run it after changing a setting: ``.venv/bin/python scripts/render_docs.py``.
``--check`` changes nothing and exits 1 naming the files that drifted (tests/test_docs.py does the same).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.config import render_example_env, render_reference_markdown  # noqa: E402

START = "<!-- config-reference:start -->"
END = "<!-- config-reference:end -->"
COMMAND = ".venv/bin/python scripts/render_docs.py"


def readme_with_reference(readme: str) -> str:
    """The README with its configuration reference block regenerated.

    Args:
        readme: the README's text; it must hold both markers, in order.

    Raises:
        ValueError: a marker is missing.
    """
    if readme.count(START) != 1 or readme.count(END) != 1 or readme.index(START) > readme.index(END):
        raise ValueError(f"README.md must contain {START} and then {END}, once each")
    before, rest = readme.split(START)
    _, after = rest.split(END)
    note = f"<!-- generated from bot/config.py by `{COMMAND}`; edit the settings there, not here -->"
    return f"{before}{START}\n{note}\n\n{render_reference_markdown()}\n\n{END}{after}"


def expected_files(root: Path = ROOT) -> dict[Path, str]:
    """Every generated file with the text it must have.

    Args:
        root: the repository.
    """
    readme = root / "README.md"
    return {
        readme: readme_with_reference(readme.read_text()),
        root / "config.example.env": render_example_env() + "\n",
    }


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with ``--check`` only compare) the generated docs.

    Args:
        argv: command-line arguments.

    Returns:
        0, or 1 when ``--check`` found a drifted file.
    """
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a file drifted")
    args = parser.parse_args(argv)
    drifted = [path for path, text in expected_files().items() if path.read_text() != text]
    if args.check:
        for path in drifted:
            print(f"{path.relative_to(ROOT)} drifted from bot/config.py: run `{COMMAND}`", file=sys.stderr)
        return 1 if drifted else 0
    for path, text in expected_files().items():
        if path in drifted:
            path.write_text(text)
            print(f"rewrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
