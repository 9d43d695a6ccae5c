"""Where a model's weights are, checked from files alone (no torch, no network).

Real models load with audiocraft's own loaders from one of two places:

1. a local folder ``<JAMGEN_MODEL_DIR>/<name>/`` holding ``state_dict.bin`` and
   ``compression_state_dict.bin`` (copied from the Hugging Face repository), or
2. the Hugging Face cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
   ``~/.cache/huggingface/hub``; audiocraft's ``AUDIOCRAFT_CACHE_DIR`` wins when set),
   filled by a first download.

The local folder wins when both have the files.

Separators (demucs' ``htdemucs``) load with demucs' own ``get_model`` from one of three places:
``<JAMGEN_MODEL_DIR>/<name>/`` holding demucs' bag file and checkpoint (``htdemucs.yaml`` and
``955717e8-8726e21a.th``, read as demucs' local ``repo``), the Hugging Face cache (demucs' hub
repository ``adefossez/HTDemucs``), or torch's hub cache (``$TORCH_HOME/hub/checkpoints``, filled
by demucs' fallback download from dl.fbaipublicfiles.com).
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
class DemucsWeights:
    """Where demucs keeps one of its pretrained models (from demucs' ``pretrained.py``, ``hf.py`` and ``remote/``).

    Args:
        name: demucs' model name (a bag of models), ``htdemucs``.
        hf_repo: its Hugging Face repository.
        hf_files: the files demucs reads from that repository.
        files: demucs' own files (bag yaml and checkpoints), as a local ``repo`` folder holds them.
        url: where the checkpoints download from without Hugging Face.
    """

    name: str
    hf_repo: str
    hf_files: tuple[str, ...]
    files: tuple[str, ...]
    url: str

    @property
    def checkpoints(self) -> tuple[str, ...]:
        """The checkpoint files of :attr:`files` (without the bag yaml)."""
        return tuple(f for f in self.files if f.endswith(".th"))


DEMUCS_WEIGHTS: dict[str, DemucsWeights] = {
    "htdemucs": DemucsWeights(
        name="htdemucs",
        hf_repo="adefossez/HTDemucs",
        hf_files=("htdemucs.yaml", "955717e8.safetensors"),
        files=("htdemucs.yaml", "955717e8-8726e21a.th"),
        url="https://dl.fbaipublicfiles.com/demucs/hybrid_transformer/",
    ),
}


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


def torch_hub_dir() -> Path:
    """torch's hub cache, where demucs' fallback download lands (``torch.hub.get_dir()``, read without torch)."""
    home = os.environ.get("TORCH_HOME")
    if home:
        return Path(home).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(xdg).expanduser() / "torch" / "hub"


def demucs_weights(spec: ModelSpec) -> DemucsWeights:
    """The demucs files of a real separator.

    Raises:
        KeyError: ``spec`` is not a real separator.
    """
    return DEMUCS_WEIGHTS[str(spec.checkpoint)]


def local_files(spec: ModelSpec) -> tuple[str, ...]:
    """The files ``<JAMGEN_MODEL_DIR>/<name>/`` must hold for a real model to load from there."""
    return demucs_weights(spec).files if spec.separator else WEIGHT_FILES


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
    if all((local / f).is_file() for f in local_files(spec)):
        return WeightsLocation(spec.name, "local", local, local, cache)
    repo: str = spec.checkpoint
    files: tuple[str, ...] = WEIGHT_FILES
    if spec.separator:
        repo, files = demucs_weights(spec).hf_repo, demucs_weights(spec).hf_files
    found = [_cached_file(cache, repo, f) for f in files]
    if all(found):
        return WeightsLocation(spec.name, "hf-cache", found[0].parent, local, cache)  # type: ignore[union-attr]
    if spec.separator:
        checkpoints = torch_hub_dir() / "checkpoints"
        if all((checkpoints / f).is_file() for f in demucs_weights(spec).checkpoints):
            return WeightsLocation(spec.name, "torch-cache", checkpoints, local, cache)
    return WeightsLocation(spec.name, "missing", None, local, cache)


def missing_weights_error(spec: ModelSpec, model_dir: Path, reason: str | None = None) -> ModelUnavailableError:
    """The error for a model whose weights are not here and cannot be fetched.

    Args:
        model_dir: ``JAMGEN_MODEL_DIR``.
        reason: why fetching failed (``downloads are off (HF_HUB_OFFLINE)``, a network error).
    """
    where = find_weights(spec, model_dir)
    why = reason or ("downloads are switched off (HF_HUB_OFFLINE)" if hf_offline() else "the download failed")
    if spec.separator:
        demucs = demucs_weights(spec)
        return ModelUnavailableError(
            f"The weights of model '{spec.name}' (demucs {demucs.name}) are not on this machine and could not be "
            f"fetched: {why}. Looked in the Hugging Face cache {where.hf_cache_dir} ({demucs.hf_repo}), in torch's "
            f"hub cache {torch_hub_dir() / 'checkpoints'} and in the local folder {where.local_dir}/. To fix it: run "
            f"`jamgen models pull {spec.name}` on a machine with network access, or put {demucs.files[0]} (demucs' "
            f"remote/{demucs.files[0]}) and {' and '.join(demucs.checkpoints)} (from {demucs.url}) into "
            f"{where.local_dir}/, or set HF_HOME to a Hugging Face cache that has them."
        )
    return ModelUnavailableError(
        f"The weights of model '{spec.name}' ({spec.checkpoint}) are not on this machine and could not be "
        f"fetched: {why}. Looked in the Hugging Face cache {where.hf_cache_dir} and in the local folder "
        f"{where.local_dir}/. To fix it: run `jamgen models pull {spec.name}` on a machine with network access, "
        f"or put {' and '.join(WEIGHT_FILES)} from huggingface.co/{spec.checkpoint} into {where.local_dir}/, "
        f"or set HF_HOME to a Hugging Face cache that has them."
    )
