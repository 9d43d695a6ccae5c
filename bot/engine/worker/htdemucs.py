"""htdemucs' shape: the released model's constructor arguments, and random-weight copies of it (no download).

Light on purpose (torch and demucs, not audiocraft): tests and benchmarks build the same model
as the worker's ``debug-stems`` from here.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import torch
from demucs.apply import BagOfModels
from demucs.htdemucs import HTDemucs

# The constructor arguments of the released htdemucs (signature 955717e8): what its checkpoint rebuilds.
HTDEMUCS_KWARGS: dict[str, Any] = {
    "sources": ["drums", "bass", "other", "vocals"],
    "audio_channels": 2,
    "samplerate": 44100,
    "segment": Fraction(39, 5),
    "channels": 48,
    "channels_time": None,
    "growth": 2,
    "nfft": 4096,
    "wiener_iters": 0,
    "end_iters": 0,
    "wiener_residual": False,
    "cac": True,
    "depth": 4,
    "rewrite": True,
    "multi_freqs": [],
    "multi_freqs_depth": 3,
    "freq_emb": 0.2,
    "emb_scale": 10,
    "emb_smooth": True,
    "kernel_size": 8,
    "stride": 4,
    "time_stride": 2,
    "context": 1,
    "context_enc": 0,
    "norm_starts": 4,
    "norm_groups": 4,
    "dconv_mode": 3,
    "dconv_depth": 2,
    "dconv_comp": 8,
    "dconv_init": 0.001,
    "bottom_channels": 512,
    "t_layers": 5,
    "t_hidden_scale": 4.0,
    "t_heads": 8,
    "t_dropout": 0.02,
    "t_layer_scale": True,
    "t_gelu": True,
    "t_emb": "sin",
    "t_max_positions": 10000,
    "t_max_period": 10000.0,
    "t_weight_pos_embed": 1.0,
    "t_cape_mean_normalize": True,
    "t_cape_augment": True,
    "t_cape_glob_loc_scale": [5000.0, 1.0, 1.4],
    "t_sin_random_shift": 0,
    "t_norm_in": True,
    "t_norm_in_group": False,
    "t_group_norm": False,
    "t_norm_first": True,
    "t_norm_out": True,
    "t_weight_decay": 0.0,
    "t_lr": None,
    "t_sparse_self_attn": False,
    "t_sparse_cross_attn": False,
    "t_mask_type": "diag",
    "t_mask_random_seed": 42,
    "t_sparse_attn_window": 400,
    "t_global_window": 100,
    "t_sparsity": 0.95,
    "t_auto_sparsity": False,
    "t_cross_first": False,
    "rescale": 0.1,
}
# debug-stems differs from the release only in its window: every segment is padded to the window, so with
# 7.8 s a 2 s test clip would cost a 7.8 s forward pass (about 15 s on one CPU core), and it would be one
# segment (no progress to see, nothing to cancel between). The weights have the same shapes either way.
DEBUG_SEGMENT = Fraction(1)


def htdemucs_kwargs(segment: Fraction = HTDEMUCS_KWARGS["segment"]) -> dict[str, Any]:
    """A fresh copy of :data:`HTDEMUCS_KWARGS` (the released constructor arguments), with another window if asked.

    Args:
        segment: seconds one forward pass covers.
    """
    kwargs = {k: list(v) if isinstance(v, list) else v for k, v in HTDEMUCS_KWARGS.items()}
    kwargs["segment"] = segment
    return kwargs


def build_random_separator(device: torch.device, *, seed: int, segment: Fraction = DEBUG_SEGMENT) -> BagOfModels:
    """An htdemucs of the released size with random weights, wrapped in a bag as demucs' loader returns it.

    Args:
        device: where it runs.
        seed: weight seed (the same seed gives the same weights in every process).
        segment: seconds one forward pass covers (the release's is 7.8 s).
    """
    torch.manual_seed(seed)
    model = HTDemucs(**htdemucs_kwargs(segment))
    return BagOfModels([model]).to(device).eval()


__all__ = ["DEBUG_SEGMENT", "HTDEMUCS_KWARGS", "build_random_separator", "htdemucs_kwargs"]
