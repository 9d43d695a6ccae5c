"""Typed settings, loaded once from the environment (and ``.env``) and validated at start.

Every setting is one field of :class:`Settings`; its metadata holds the
environment key, the one-line description, and the allowed values. The same
definition renders ``config.example.env`` and the README's configuration
reference, and a test fails if they drift apart.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.errors import ConfigError


class Secret:
    """A string that never shows itself in ``repr``/``str``/logs.

    Args:
        value: the secret text.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        """The real value; call only where it is sent to Discord."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _setting(
    key: str,
    default: Any,
    doc: str,
    *,
    kind: str = "str",
    low: float | None = None,
    high: float | None = None,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """Declare one setting.

    Args:
        key: environment variable name.
        default: value when unset (already of the field's type).
        doc: one line for the example file and the README.
        kind: str, int, float, bool, path, secret, str_list, int_list or choice.
        low: smallest allowed number (int/float).
        high: largest allowed number (int/float).
        choices: allowed values for ``choice``.
    """
    meta = {"key": key, "doc": doc, "kind": kind, "low": low, "high": high, "choices": choices}
    if isinstance(default, list | tuple):
        return field(default_factory=lambda: tuple(default), metadata=meta)
    return field(default=default, metadata=meta)


MODEL_NAMES_HINT = "small, medium, large, melody, melody-large, stereo-*, style"


@dataclass(frozen=True)
class Settings:
    """Every knob of jamgen. Build with :meth:`Settings.from_env`."""

    # Discord
    discord_token: Secret = _setting(
        "DISCORD_TOKEN",
        Secret(""),
        "Bot token from the Discord developer portal (required by `jamgen run`).",
        kind="secret",
    )
    discord_app_id: int = _setting(
        "DISCORD_APP_ID",
        0,
        "Application id, used by `jamgen invite` (0 = the bot id inside DISCORD_TOKEN).",
        kind="int",
        low=0,
    )
    dev_guild_id: int = _setting(
        "JAMGEN_DEV_GUILD_ID",
        0,
        "Guild to sync slash commands to instantly while testing (0 = sync globally).",
        kind="int",
        low=0,
    )
    admin_user_ids: tuple[int, ...] = _setting(
        "JAMGEN_ADMIN_USER_IDS",
        (),
        "Comma-separated user ids with unlimited quota and queue priority.",
        kind="int_list",
    )
    message_content_intent: bool = _setting(
        "JAMGEN_MESSAGE_CONTENT_INTENT",
        False,
        "Ask for the privileged message-content intent (needed for reply-to-remix without mentioning the bot).",
        kind="bool",
    )
    # Paths
    data_dir: Path = _setting("JAMGEN_DATA_DIR", Path("./data"), "Folder for jobs, inputs and outputs.", kind="path")
    db_path: Path = _setting("JAMGEN_DB_PATH", Path("./data/jamgen.db"), "SQLite database file.", kind="path")
    model_dir: Path = _setting(
        "JAMGEN_MODEL_DIR",
        Path("./models"),
        "Local weights: <dir>/<model>/state_dict.bin and compression_state_dict.bin.",
        kind="path",
    )
    # Logging
    log_level: str = _setting(
        "JAMGEN_LOG_LEVEL", "INFO", "Log level.", kind="choice", choices=("DEBUG", "INFO", "WARNING", "ERROR")
    )
    # Engine
    device: str = _setting("JAMGEN_DEVICE", "auto", "Where models run.", kind="choice", choices=("auto", "cuda", "cpu"))
    default_model: str = _setting("JAMGEN_DEFAULT_MODEL", "small", f"Default model ({MODEL_NAMES_HINT}).")
    enabled_models: tuple[str, ...] = _setting(
        "JAMGEN_ENABLED_MODELS", (), "Comma-separated models members may use (empty = every model).", kind="str_list"
    )
    debug_models: bool = _setting(
        "JAMGEN_DEBUG_MODELS", False, "Offer the tiny random test models (debug*) in Discord.", kind="bool"
    )
    warmup: bool = _setting("JAMGEN_WARMUP", True, "Load the default model when the engine starts.", kind="bool")
    model_memory_gb: float = _setting(
        "JAMGEN_MODEL_MEMORY_GB",
        0.0,
        "Memory budget for loaded models in GiB (0 = 80% of the device).",
        kind="float",
        low=0,
        high=4096,
    )
    cpu_threads: int = _setting(
        "JAMGEN_CPU_THREADS",
        0,
        "Torch threads when the engine runs on the CPU (0 = every core).",
        kind="int",
        low=0,
        high=512,
    )
    huge_pages: bool = _setting(
        "JAMGEN_HUGE_PAGES",
        True,
        "On the CPU, keep model weights on transparent huge pages (decoding about a fifth faster).",
        kind="bool",
    )
    cpu_matmul: str = _setting(
        "JAMGEN_CPU_MATMUL",
        "onednn",
        "On the CPU, whose kernels multiply the matrices of each decoding step: onednn (faster, "
        "batches most of all) or mkl (audiocraft's own: bit-identical tokens, slower).",
        kind="choice",
        choices=("onednn", "mkl"),
    )
    max_batch: int = _setting(
        "JAMGEN_MAX_BATCH",
        0,
        "Most requests in one generate call (0 = 4 on CPU, 8 on GPU).",
        kind="int",
        low=0,
        high=64,
    )
    watchdog_factor: float = _setting(
        "JAMGEN_WATCHDOG_FACTOR",
        30.0,
        "A generation is killed after this many seconds per second of audio (plus 60 s).",
        kind="float",
        low=1,
        high=10000,
    )
    # Scaling (docs/SCALING.md)
    engines: int = _setting(
        "JAMGEN_ENGINES",
        1,
        "Engines that run batches at once: local child i owns GPU i; with Ray, 0 = one per cluster GPU.",
        kind="int",
        low=0,
        high=1024,
    )
    engine_backend: str = _setting(
        "JAMGEN_ENGINE_BACKEND",
        "local",
        "Where engines run: child processes on this host, or Ray actors on a cluster.",
        kind="choice",
        choices=("local", "ray"),
    )
    ray_address: str = _setting(
        "JAMGEN_RAY_ADDRESS", "auto", "Ray cluster to join (host:port of the head, or auto for a local `ray start`)."
    )
    ray_wait_s: float = _setting(
        "JAMGEN_RAY_WAIT_S",
        120.0,
        "With Ray, a batch waits this long for an engine; then its jobs fail refunded (cluster unreachable).",
        kind="float",
        low=1,
        high=86400,
    )
    # Limits for members
    max_duration: int = _setting("JAMGEN_MAX_DURATION", 120, "Longest track in seconds.", kind="int", low=1, high=300)
    default_duration: int = _setting(
        "JAMGEN_DEFAULT_DURATION", 10, "Track length when none is given.", kind="int", low=1, high=300
    )
    max_takes: int = _setting("JAMGEN_MAX_TAKES", 4, "Most takes per request.", kind="int", low=1, high=4)
    max_prompt_length: int = _setting(
        "JAMGEN_MAX_PROMPT_LENGTH", 500, "Longest prompt in characters.", kind="int", low=1, high=2000
    )
    daily_budget_seconds: int = _setting(
        "JAMGEN_DAILY_BUDGET_SECONDS",
        600,
        "Seconds of audio per member per UTC day (cost = duration x model weight x takes).",
        kind="int",
        low=0,
        high=10_000_000,
    )
    max_pending_per_user: int = _setting(
        "JAMGEN_MAX_PENDING_PER_USER", 3, "Most queued or running jobs per member.", kind="int", low=1, high=1000
    )
    max_pending_per_guild: int = _setting(
        "JAMGEN_MAX_PENDING_PER_GUILD", 20, "Most queued or running jobs per guild.", kind="int", low=1, high=100_000
    )
    max_queue: int = _setting("JAMGEN_MAX_QUEUE", 500, "Most jobs waiting in all.", kind="int", low=1, high=1_000_000)
    max_attempts: int = _setting(
        "JAMGEN_MAX_ATTEMPTS", 2, "Tries per job before it fails and is refunded.", kind="int", low=1, high=10
    )
    # Audio
    max_attachment_mb: float = _setting(
        "JAMGEN_MAX_ATTACHMENT_MB", 25.0, "Largest attachment accepted, in MiB.", kind="float", low=0.01, high=1024
    )
    max_input_minutes: float = _setting(
        "JAMGEN_MAX_INPUT_MINUTES", 10.0, "Longest attachment accepted, in minutes.", kind="float", low=0.01, high=600
    )
    ffmpeg_timeout: float = _setting(
        "JAMGEN_FFMPEG_TIMEOUT", 20.0, "Seconds one ffmpeg/ffprobe run may take.", kind="float", low=1, high=3600
    )
    upload_limit_mb: float = _setting(
        "JAMGEN_UPLOAD_LIMIT_MB", 10.0, "Upload limit when Discord does not say (MiB).", kind="float", low=0.1, high=500
    )
    normalization: str = _setting(
        "JAMGEN_NORMALIZATION",
        "loudness",
        "How outputs are levelled.",
        kind="choice",
        choices=("loudness", "peak", "clip", "none"),
    )
    loudness_target: float = _setting(
        "JAMGEN_LOUDNESS_TARGET", -14.0, "Loudness target in LUFS for `loudness`.", kind="float", low=-70, high=0
    )
    # Service
    progress_interval: float = _setting(
        "JAMGEN_PROGRESS_INTERVAL", 5.0, "Seconds between progress updates.", kind="float", low=0.05, high=600
    )
    shutdown_grace: float = _setting(
        "JAMGEN_SHUTDOWN_GRACE",
        60.0,
        "Seconds the running batch may take to finish at shutdown.",
        kind="float",
        low=0,
        high=3600,
    )
    delivery_retry_minutes: float = _setting(
        "JAMGEN_DELIVERY_RETRY_MINUTES", 15.0, "How long a failed delivery is retried.", kind="float", low=0, high=1440
    )
    stems_cost: float = _setting(
        "JAMGEN_STEMS_COST",
        0.25,
        "Quota seconds charged per second of audio split into stems (a second request for the same take is free).",
        kind="float",
        low=0,
        high=10,
    )
    stems_model: str = _setting(
        "JAMGEN_STEMS_MODEL", "htdemucs", "Model that splits takes into stems (htdemucs; debug-stems for tests)."
    )
    retention_days: int = _setting(
        "JAMGEN_RETENTION_DAYS", 7, "Days output files are kept (rows and recipes stay).", kind="int", low=1, high=3650
    )
    card_style: str = _setting(
        "JAMGEN_CARD_STYLE",
        "v2",
        "How takes look: v2 (one card per take, the MP3 inside it) or classic (embeds, files under them).",
        kind="choice",
        choices=("v2", "classic"),
    )
    voice_idle_minutes: float = _setting(
        "JAMGEN_VOICE_IDLE_MINUTES",
        5.0,
        "Minutes a voice jam's channel may stay empty before jamgen leaves it.",
        kind="float",
        low=0.01,
        high=1440,
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, dotenv: Path | None = None) -> Settings:
        """Read and validate every setting.

        Args:
            env: variables to read (default: ``os.environ``).
            dotenv: a ``.env`` file whose values fill in what ``env`` lacks.

        Raises:
            ConfigError: naming the key, the bad value and what is allowed.
        """
        values: dict[str, str] = {}
        if dotenv is not None and dotenv.is_file():
            from dotenv import dotenv_values

            values.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
        values.update(os.environ if env is None else env)
        kwargs = {}
        for f in dataclasses.fields(cls):
            key = f.metadata["key"]
            raw = values.get(key)
            if raw is not None and raw.strip() != "":
                kwargs[f.name] = _parse(raw.strip(), f.metadata)
        settings = cls(**kwargs)
        settings._check_relations()
        return settings

    def _check_relations(self) -> None:
        if self.default_duration > self.max_duration:
            raise ConfigError(
                f"JAMGEN_DEFAULT_DURATION must not exceed JAMGEN_MAX_DURATION ({self.max_duration}), "
                f"got '{self.default_duration}'"
            )

    def require_token(self) -> str:
        """The bot token, or a ConfigError that says how to get one."""
        if not self.discord_token:
            raise ConfigError(
                "DISCORD_TOKEN is not set. Create a bot in the Discord developer portal "
                "(README: 'Create the Discord application'), put its token in .env, "
                'or try a track without Discord: jamgen generate "lofi piano" -o take.mp3'
            )
        return self.discord_token.get_secret_value()

    @property
    def outputs_dir(self) -> Path:
        """Where rendered tracks are written."""
        return self.data_dir / "outputs"

    @property
    def jobs_dir(self) -> Path:
        """Where each job keeps its inputs."""
        return self.data_dir / "jobs"


def _describe(meta: Mapping[str, Any]) -> str:
    kind = meta["kind"]
    if kind == "choice":
        return "one of " + ", ".join(meta["choices"])
    if kind in ("int", "float"):
        article = "an integer" if kind == "int" else "a number"
        low, high = meta["low"], meta["high"]
        if low is not None and high is not None:
            return f"{article} {_fmt(low)}-{_fmt(high)}"
        if low is not None:
            return f"{article} >= {_fmt(low)}"
        return article
    return {
        "bool": "true or false",
        "int_list": "comma-separated integers",
        "str_list": "comma-separated names",
    }.get(kind, "text")


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse(raw: str, meta: Mapping[str, Any]) -> Any:
    key, kind = meta["key"], meta["kind"]

    def bad() -> ConfigError:
        return ConfigError(f"{key} must be {_describe(meta)}, got {raw!r}")

    if kind == "secret":
        return Secret(raw)
    if kind == "path":
        return Path(raw).expanduser()
    if kind == "str":
        return raw
    if kind == "bool":
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise bad()
    if kind == "choice":
        match = next((c for c in meta["choices"] if c.lower() == raw.lower()), None)
        if match is None:
            raise bad()
        return match
    if kind == "str_list":
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if kind == "int_list":
        try:
            return tuple(int(part) for part in raw.split(",") if part.strip())
        except ValueError:
            raise bad() from None
    if kind in ("int", "float"):
        try:
            number: float = int(raw) if kind == "int" else float(raw)
        except ValueError:
            raise bad() from None
        if (
            math.isnan(number)
            or (meta["low"] is not None and number < meta["low"])
            or (meta["high"] is not None and number > meta["high"])
        ):
            raise bad()
        return number
    raise AssertionError(f"unknown setting kind {kind}")


def render_example_env() -> str:
    """``config.example.env`` as it must read: every key, a comment and its default."""
    lines = [
        "# jamgen configuration. Copy to .env and edit; every key is optional except DISCORD_TOKEN for `jamgen run`.",
        "# Generated from bot/config.py (tests fail if the two drift apart).",
        "",
    ]
    for f in dataclasses.fields(Settings):
        meta = f.metadata
        lines.append(f"# {meta['doc']} ({_describe(meta)})")
        lines.append(f"{meta['key']}={_default_text(f)}")
        lines.append("")
    return "\n".join(lines)


def render_reference_markdown() -> str:
    """The README's configuration reference table."""
    rows = ["| key | default | allowed | what it does |", "|---|---|---|---|"]
    for f in dataclasses.fields(Settings):
        meta = f.metadata
        default = _default_text(f) or "(empty)"
        rows.append(f"| `{meta['key']}` | `{default}` | {_describe(meta)} | {meta['doc']} |")
    return "\n".join(rows)


def _default_text(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        raise AssertionError(f"setting {f.name} has no default")
    if isinstance(default, Secret):
        return ""
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, tuple):
        return ",".join(str(v) for v in default)
    if isinstance(default, float):
        return _fmt(default)
    return str(default)
