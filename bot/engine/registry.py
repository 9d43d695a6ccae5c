"""The models jamgen knows: what each can do, what it costs, what it needs (pure data, no torch)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.engine.types import Mode, ModelUnavailableError

_TEXT_MODES = frozenset({Mode.TEXT, Mode.CONTINUATION, Mode.UNCONDITIONAL})
_MELODY_MODES = _TEXT_MODES | {Mode.MELODY}
_STYLE_MODES = _TEXT_MODES | {Mode.STYLE}
_STEMS_MODES = frozenset({Mode.STEMS})
# Separation progress is counted in tenths of a second of audio (ModelSpec.frame_rate of a separator).
SEPARATION_UNITS_PER_S = 10


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the registry.

    Args:
        name: jamgen's name (``small``, ``stereo-melody`` …).
        checkpoint: audiocraft/Hugging Face name (``facebook/musicgen-small``); None for debug models.
        modes: what it can do.
        stereo: two output channels.
        max_duration: seconds one window covers; longer tracks are extended in windows.
        cost_weight: quota seconds charged per second of audio.
        vram_gb: approximate GPU memory to load and run at batch 1 in fp16.
        sample_rate: of its output.
        frame_rate: decoding steps per second of audio (for ETAs); a separator's progress units per second.
        debug: random test model, built in code (no download).
        blurb: what it is good for (for /help and the README).
        separator: splits audio into stems (``Mode.STEMS``, demucs) instead of making music; its
            ``max_duration`` is the longest track it splits, ``checkpoint`` is demucs' model name.
    """

    name: str
    checkpoint: str | None
    modes: frozenset[Mode]
    stereo: bool
    max_duration: float
    cost_weight: float
    vram_gb: float
    sample_rate: int = 32000
    frame_rate: int = 50
    debug: bool = False
    blurb: str = ""
    separator: bool = False

    @property
    def channels(self) -> int:
        """Output channel count."""
        return 2 if self.stereo else 1

    def supports(self, mode: Mode) -> bool:
        """Whether this model can make a take in ``mode``."""
        return mode in self.modes


def _real(name: str, modes: frozenset[Mode], weight: float, vram: float, blurb: str) -> ModelSpec:
    return ModelSpec(
        name=name,
        checkpoint=f"facebook/musicgen-{name}",
        modes=modes,
        stereo=name.startswith("stereo-"),
        max_duration=30.0,
        cost_weight=weight,
        vram_gb=vram,
        blurb=blurb,
    )


def _debug(name: str, modes: frozenset[Mode], stereo: bool = False) -> ModelSpec:
    return ModelSpec(
        name=name,
        checkpoint=None,
        modes=modes,
        stereo=stereo,
        max_duration=4.0,
        cost_weight=1.0,
        vram_gb=0.1,
        frame_rate=25,
        debug=True,
        blurb="tiny random model for tests (noise, not music)",
    )


def _separator(name: str, *, debug: bool, vram: float) -> ModelSpec:
    return ModelSpec(
        name=name,
        checkpoint=None if debug else name,
        modes=_STEMS_MODES,
        stereo=True,
        max_duration=600.0,
        cost_weight=1.0,
        vram_gb=vram,
        sample_rate=44100,
        frame_rate=SEPARATION_UNITS_PER_S,
        debug=debug,
        blurb=(
            "random htdemucs of the real size for tests (splits into noise)"
            if debug
            else "Demucs v4 hybrid transformer: splits a track into drums, bass, other and vocals"
        ),
        separator=True,
    )


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _real("small", _TEXT_MODES, 1.0, 4, "300M parameters: fast sketches and quick jams"),
        _real("medium", _TEXT_MODES, 2.0, 8, "1.5B parameters: better structure, still quick on a GPU"),
        _real("large", _TEXT_MODES, 4.0, 16, "3.3B parameters: best text-to-music quality, slowest"),
        _real("melody", _MELODY_MODES, 2.0, 8, "1.5B, follows a hummed or played melody"),
        _real("melody-large", _MELODY_MODES, 4.0, 16, "3.3B, melody conditioning at the best quality"),
        _real("stereo-small", _TEXT_MODES, 1.5, 5, "stereo version of small"),
        _real("stereo-medium", _TEXT_MODES, 3.0, 10, "stereo version of medium"),
        _real("stereo-large", _TEXT_MODES, 6.0, 18, "stereo version of large"),
        _real("stereo-melody", _MELODY_MODES, 3.0, 10, "stereo melody model"),
        _real("stereo-melody-large", _MELODY_MODES, 6.0, 18, "stereo melody model, best quality"),
        _real("style", _STYLE_MODES, 2.0, 9, "MusicGen-Style 1.5B: makes music in the style of a short excerpt"),
        _debug("debug", _TEXT_MODES),
        _debug("debug-stereo", _TEXT_MODES, stereo=True),
        _debug("debug-melody", _MELODY_MODES),
        _debug("debug-style", _STYLE_MODES),
        _separator("htdemucs", debug=False, vram=2.5),
        # The real htdemucs' shape with random weights (bot/engine/worker/separate.py), 42 M parameters.
        _separator("debug-stems", debug=True, vram=0.2),
    )
}


def get_model_spec(name: str) -> ModelSpec:
    """Look a model up by name.

    Args:
        name: registry name.

    Raises:
        ModelUnavailableError: with the list of known models.
    """
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(n for n, s in MODELS.items() if not s.debug)
        raise ModelUnavailableError(f"There is no model called '{name}'. Models: {known}.") from None


def is_separator(name: str) -> bool:
    """Whether ``name`` is a known model that splits audio into stems (False for unknown names)."""
    spec = MODELS.get(name)
    return spec is not None and spec.separator
