"""Where a model's weights are, checked from files alone (no torch, no network).

Real models load with audiocraft's own loaders from one of two places:

1. a local folder ``<JAMGEN_MODEL_DIR>/<name>/`` holding ``state_dict.bin`` and
   ``compression_state_dict.bin`` (copied from the Hugging Face repository), or
2. the Hugging Face cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
   ``~/.cache/huggingface/hub``; audiocraft's ``AUDIOCRAFT_CACHE_DIR`` wins when set),
   filled by a first download.

The local folder wins when both have the files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bot.engine.registry import ModelSpec
from bot.engine.types import ModelUnavailableError

WEIGHT_FILES = ("state_dict.bin", "compression_state_dict.bin")
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class WeightsLocation:
    """Where a model's weights were found.

    Args:
        model: registry name.
        source: ``built-in`` (debug models), ``local``, ``hf-cache`` or ``missing``.
        path: the folder (local) or the file's folder in the cache; None when built in or missing.
        local_dir: the local folder that was checked.
        hf_cache_dir: the Hugging Face cache that was checked.
    """

    model: str
    source: str
    path: Path | None
    local_dir: Path | None
    hf_cache_dir: Path

    @property
    def present(self) -> bool:
        """Whether the model can load without a download."""
        return self.source != "missing"


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache audiocraft reads and fills (from the environment, read now)."""
    explicit = os.environ.get("AUDIOCRAFT_CACHE_DIR") or os.environ.get("HF_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("HF_HOME")
    if home:
        return Path(home).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(xdg).expanduser() / "huggingface" / "hub"


def hf_offline() -> bool:
    """Whether Hugging Face downloads are switched off (``HF_HUB_OFFLINE``)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def local_model_dir(model_dir: Path, name: str) -> Path:
    """The local weights folder of one model.

    Args:
        model_dir: ``JAMGEN_MODEL_DIR``.
        name: registry name.
    """
    return Path(model_dir).expanduser().absolute() / name


def _cached_file(cache: Path, repo_id: str, filename: str) -> Path | None:
    """The cached file of the repository's main revision, following the hub cache layout."""
    repo_dir = cache / ("models--" + repo_id.replace("/", "--"))
    ref = repo_dir / "refs" / "main"
    snapshots = repo_dir / "snapshots"
    candidates: list[Path] = []
    if ref.is_file():
        candidates.append(snapshots / ref.read_text().strip() / filename)
    if snapshots.is_dir():
        candidates += sorted(snapshots.glob(f"*/{filename}"))
    return next((c for c in candidates if c.is_file()), None)


def find_weights(spec: ModelSpec, model_dir: Path) -> WeightsLocation:
    """Look for a model's weight files.

    Args:
        model_dir: ``JAMGEN_MODEL_DIR``.
    """
    cache = hf_cache_dir()
    if spec.debug or spec.checkpoint is None:
        return WeightsLocation(spec.name, "built-in", None, None, cache)
    local = local_model_dir(model_dir, spec.name)
    if all((local / f).is_file() for f in WEIGHT_FILES):
        return WeightsLocation(spec.name, "local", local, local, cache)
    found = [_cached_file(cache, spec.checkpoint, f) for f in WEIGHT_FILES]
    if all(found):
        return WeightsLocation(spec.name, "hf-cache", found[0].parent, local, cache)  # type: ignore[union-attr]
    return WeightsLocation(spec.name, "missing", None, local, cache)


def missing_weights_error(spec: ModelSpec, model_dir: Path, reason: str | None = None) -> ModelUnavailableError:
    """The error for a model whose weights are not here and cannot be fetched.

    Args:
        model_dir: ``JAMGEN_MODEL_DIR``.
        reason: why fetching failed (``downloads are off (HF_HUB_OFFLINE)``, a network error).
    """
    where = find_weights(spec, model_dir)
    why = reason or ("downloads are switched off (HF_HUB_OFFLINE)" if hf_offline() else "the download failed")
    return ModelUnavailableError(
        f"The weights of model '{spec.name}' ({spec.checkpoint}) are not on this machine and could not be "
        f"fetched: {why}. Looked in the Hugging Face cache {where.hf_cache_dir} and in the local folder "
        f"{where.local_dir}/. To fix it: run `jamgen models pull {spec.name}` on a machine with network access, "
        f"or put {' and '.join(WEIGHT_FILES)} from huggingface.co/{spec.checkpoint} into {where.local_dir}/, "
        f"or set HF_HOME to a Hugging Face cache that has them."
    )
