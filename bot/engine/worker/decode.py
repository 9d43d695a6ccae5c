"""jamgen's decode loop: audiocraft's ``LMModel.generate`` without the per-step waste.

``MusicGen`` keeps everything it does around the loop (conditions, long-form windows, prompts,
the codec); :func:`jamgen_decoding` only swaps ``model.lm.generate`` for :func:`fast_generate`
while a call runs. :func:`fast_generate` makes the same tokens as audiocraft (greedy: identical;
sampling: the same draws from the same random stream; on the CPU with oneDNN's products, the same
to within rounding), and differs in how a step is computed:

* **first step unchanged**: the first model call (prompt, prepended melody/style condition) runs
  through audiocraft's own streaming code; its keys and values are then moved into
* **a preallocated KV cache**: one buffer per layer, sized for the whole window, that each step
  writes one position of, where audiocraft concatenates (copies) the whole past every step;
* **cross-attention keys and values once per window**: audiocraft projects the text condition
  through each layer's key and value weights at every step (``StreamingMultiheadAttention``
  with ``cross_attention=True``); they never change within a window, so they are computed once;
* **no streaming bookkeeping**: no state dictionaries, masks, einops or host syncs per step,
  and every weight, norm and switch a step uses is looked up once per window (a module attribute
  costs a Python call; a step of a 24-layer model made hundreds);
* **CUDA graphs** (on CUDA, optional): the one-token step gets static shapes (its position is
  read from a tensor, the cache is attended to a bucket of positions with a mask), is captured
  once per bucket of 256 positions and replayed. Each graph's first replay is checked against
  the eager step, and the loop runs eagerly if they disagree or capture fails;
* **oneDNN's products on the CPU** (``DecodeOptions.cpu_matmul``): MKL's float32 products, which
  ``F.linear`` runs, are far below the memory bandwidth on AMD CPUs; oneDNN's are not.

The arithmetic of a step is audiocraft's, operation for operation and in the same shapes, so with
audiocraft's kernels (``cpu_matmul="mkl"``) greedy decoding gives bit-identical logits on the CPU
(tests/bot/engine/worker/test_decode.py compares the tokens with audiocraft's for the text,
stereo, continuation, melody and style models, and the released configurations at tiny size);
oneDNN's kernels round differently in the last bits (the tests bound the logits). The
static-shape step attends over masked positions too; on the CPU its tokens are the same, on a GPU
its kernels may round differently.

Models the loop does not know (MAGNeT, rotary embeddings, limited past context, two-step CFG,
``sum``/``input_interpolate`` fusing, xformers attention, nn.MultiheadAttention layers) use
audiocraft's loop: :func:`unsupported_reason` says why.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator

import torch
from audiocraft.models import MusicGen
from audiocraft.models.lm import LMModel
from audiocraft.modules import transformer as audiocraft_transformer
from audiocraft.modules.conditioners import (
    ClassifierFreeGuidanceDropout,
    ConditioningAttributes,
    _drop_description_condition,
)
from audiocraft.modules.transformer import (
    StreamingMultiheadAttention,
    StreamingTransformer,
    StreamingTransformerLayer,
    create_sin_embedding,
)
from audiocraft.utils import utils as audiocraft_utils
from torch import nn
from torch.nn import functional as F  # noqa: N812 (the usual name)

from bot.engine.decoding import DecodeOptions
from bot.engine.worker.kernels import Linear, step_linear

log = logging.getLogger("jamgen.engine.worker")

Progress = Callable[[int, int], None]
UNKNOWN_TOKEN = -1


# ---------------------------------------------------------------- what the loop supports


def _attention_problem(attn: StreamingMultiheadAttention, where: str) -> str | None:
    """Why an attention module is outside the loop's subset (None when it is inside)."""
    if not attn.custom:
        return f"{where} uses nn.MultiheadAttention"
    if attn.rope is not None:
        return f"{where} uses rotary embeddings"
    if attn.qk_layer_norm:
        return f"{where} normalises queries and keys"
    if attn.kv_repeat != 1:
        return f"{where} repeats keys and values"
    if attn.past_context is not None:
        return f"{where} has a limited past context"
    if attn.memory_efficient and audiocraft_transformer._efficient_attention_backend != "torch":
        return f"{where} uses xformers attention"
    return None


def unsupported_reason(lm: LMModel) -> str | None:
    """Why :func:`fast_generate` cannot decode for this LM, or None when it can.

    Args:
        lm: the language model.
    """
    if type(lm) is not LMModel:
        return f"the LM is a {type(lm).__name__}, not audiocraft's LMModel"
    if lm.training:
        return "the LM is in training mode"
    if lm._fsdp is not None:
        return "the LM is wrapped in FSDP"
    if lm.fuser.fuse2cond["sum"] or lm.fuser.fuse2cond["input_interpolate"]:
        return "conditions are fused by sum or input_interpolate"
    transformer = lm.transformer
    if type(transformer) is not StreamingTransformer:
        return f"the transformer is a {type(transformer).__name__}"
    if transformer.positional_embedding != "sin":
        return f"positional embedding {transformer.positional_embedding!r}"
    if transformer.checkpointing != "none":
        return "the transformer uses checkpointing"
    for index, layer in enumerate(transformer.layers):
        if type(layer) is not StreamingTransformerLayer:
            return f"layer {index} is a {type(layer).__name__}"
        problem = _attention_problem(layer.self_attn, f"layer {index}'s self-attention")
        if problem is None and not layer.self_attn.causal:
            problem = f"layer {index}'s self-attention is not causal"
        cross = layer.cross_attention
        if problem is None and cross is not None:
            if type(cross) is not StreamingMultiheadAttention:
                problem = f"layer {index}'s cross-attention is a {type(cross).__name__}"
            else:
                problem = _attention_problem(cross, f"layer {index}'s cross-attention")
        if problem is not None:
            return problem
    return None


# ---------------------------------------------------------------- one step


def _time_dim(attn: StreamingMultiheadAttention) -> int:
    """audiocraft's layout: [b, h, t, d] (time dim 2) for SDPA, [b, t, h, d] (time dim 1) for its einsum path."""
    return 2 if attn.memory_efficient else 1


# audiocraft keeps layers, embeddings and output projections in nn.ModuleLists and types a layer's
# cross-attention as an nn.Module; these accessors give a supported LM's parts their classes.


def _layers(lm: LMModel) -> list[StreamingTransformerLayer]:
    """The transformer's layers (every one a StreamingTransformerLayer in a supported LM)."""
    layers = []
    for layer in lm.transformer.layers:
        assert isinstance(layer, StreamingTransformerLayer)
        layers.append(layer)
    return layers


def _layer_cross_attention(layer: StreamingTransformerLayer) -> StreamingMultiheadAttention | None:
    """A layer's cross-attention, if it has one (a StreamingMultiheadAttention in a supported LM)."""
    attn = layer.cross_attention
    assert attn is None or isinstance(attn, StreamingMultiheadAttention)
    return attn


def _embedding_weights(lm: LMModel) -> list[torch.Tensor]:
    """The weights of the LM's codebook embeddings, one per codebook."""
    weights = []
    for emb in lm.emb:
        assert isinstance(emb, nn.Embedding)
        weights.append(emb.weight)
    return weights


def _linear_weights(lm: LMModel) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """(weight, bias) of the LM's output projections, one per codebook."""
    weights: list[tuple[torch.Tensor, torch.Tensor | None]] = []
    for linear in lm.linears:
        assert isinstance(linear, nn.Linear)
        weights.append((linear.weight, linear.bias))
    return weights


def _sum(tensors: list[torch.Tensor]) -> torch.Tensor:
    """``sum(tensors)`` exactly as audiocraft adds its codebook embeddings (0 + t0 + t1 ...)."""
    total = sum(tensors)
    assert isinstance(total, torch.Tensor)
    return total


def _split_heads(x: torch.Tensor, heads: int, time_dim: int) -> torch.Tensor:
    """``rearrange(x, "b t (h d) -> <layout>")``."""
    b, t, _ = x.shape
    x = x.view(b, t, heads, -1)
    return x.permute(0, 2, 1, 3) if time_dim == 2 else x


def _merge_heads(x: torch.Tensor, time_dim: int) -> torch.Tensor:
    """``rearrange(x, "<layout> -> b t (h d)")``."""
    if time_dim == 2:
        x = x.permute(0, 2, 1, 3)
    b, t, h, d = x.shape
    return x.reshape(b, t, h * d)


Op = Callable[[torch.Tensor], torch.Tensor]


def _unchanged(x: torch.Tensor) -> torch.Tensor:
    return x


def _bound_norm(module: nn.Module) -> Op:
    """A norm as a plain function: for a LayerNorm, its op with the weights bound; else the module."""
    if type(module) is not nn.LayerNorm:
        return module
    shape, weight, bias, eps = module.normalized_shape, module.weight, module.bias, module.eps
    cudnn = torch.backends.cudnn.enabled

    def norm(x: torch.Tensor) -> torch.Tensor:
        # The op F.layer_norm calls, without its Python-level checks.
        return torch.layer_norm(x, shape, weight, bias, eps, cudnn)

    return norm


def _bound_scale(module: nn.Module) -> Op:
    """A layer scale as a function (the identity unless the model has LayerScale)."""
    return _unchanged if isinstance(module, nn.Identity) else module


def _in_projection(attn: StreamingMultiheadAttention, part: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The query (0), key (1) or value (2) slice of an attention's packed input projection, (weight, bias)."""
    dim = attn.in_proj_weight.shape[0] // 3
    rows = slice(part * dim, (part + 1) * dim)
    bias = attn.in_proj_bias
    return attn.in_proj_weight[rows], None if bias is None else bias[rows]


class _Attention:
    """An attention module's weights and switches, looked up once per window rather than at every step.

    Args:
        query_only: keep only the query slice of the input projection (cross-attention, whose
            keys and values are computed once per window).
    """

    def __init__(self, attn: StreamingMultiheadAttention, query_only: bool) -> None:
        self.heads = attn.num_heads
        self.time_dim = _time_dim(attn)
        self.memory_efficient = attn.memory_efficient
        self.as_float32 = attn.attention_as_float32
        self.safe_streaming = attn.safe_streaming
        whole = (attn.in_proj_weight, attn.in_proj_bias)
        self.in_weight, self.in_bias = _in_projection(attn, 0) if query_only else whole
        self.out_weight, self.out_bias = attn.out_proj.weight, attn.out_proj.bias


class _LayerState:
    """One layer's KV cache, its ops bound once per window, and its cross-attention keys and values.

    Every attribute a step reads is a plain attribute, not an ``nn.Module`` lookup.

    Args:
        keys: self-attention keys, the whole window's capacity, audiocraft's layout.
        values: self-attention values, same shape.
        cross_source: the fused cross-attention input of the window (None without cross-attention).
    """

    def __init__(
        self,
        layer: StreamingTransformerLayer,
        keys: torch.Tensor,
        values: torch.Tensor,
        cross_source: torch.Tensor | None,
    ) -> None:
        self.layer = layer
        self.keys = keys
        self.values = values
        self.norm_first: bool = layer.norm_first
        self.self_attn = _Attention(layer.self_attn, query_only=False)
        self.norm1, self.norm2 = _bound_norm(layer.norm1), _bound_norm(layer.norm2)
        self.scale_1, self.scale_2 = _bound_scale(layer.layer_scale_1), _bound_scale(layer.layer_scale_2)
        self.linear1 = (layer.linear1.weight, layer.linear1.bias)
        self.linear2 = (layer.linear2.weight, layer.linear2.bias)
        self.activation: Op = layer.activation
        self.cross: _Attention | None = None
        self.cross_keys: torch.Tensor | None = None
        self.cross_values: torch.Tensor | None = None
        cross = _layer_cross_attention(layer)
        if cross is not None:
            assert cross_source is not None
            self.cross = _Attention(cross, query_only=True)
            self.norm_cross = _bound_norm(layer.norm_cross)
            self.scale_cross = _bound_scale(layer.layer_scale_cross)
            self.prepare_cross(cross_source)

    def prepare_cross(self, source: torch.Tensor) -> None:
        """The cross-attention keys and values, computed as audiocraft computes them at every step.

        Args:
            source: the fused cross-attention input of the window.
        """
        attn = _layer_cross_attention(self.layer)
        assert attn is not None
        assert self.cross is not None
        k = F.linear(source, *_in_projection(attn, 1))
        v = F.linear(source, *_in_projection(attn, 2))
        self.cross_keys = _split_heads(k, self.cross.heads, self.cross.time_dim)
        self.cross_values = _split_heads(v, self.cross.heads, self.cross.time_dim)


class _StepModel:
    """The one-token decoding step of an LMModel, with the KV cache it reads and writes.

    Args:
        lm: a supported LM (see :func:`unsupported_reason`).
        prefill_state: audiocraft's streaming state after the first model call.
        capacity: tokens the cache holds (the first call's and every later step's).
        cross_source: the fused cross-attention input of the window, or None.
        static: static shapes for CUDA graphs: the step reads its position from a tensor and
            attends over the first :attr:`window` cache positions with a mask.
        linear: the step's matrix product (:func:`step_linear`).
    """

    def __init__(
        self,
        lm: LMModel,
        prefill_state: dict[str, torch.Tensor],
        capacity: int,
        cross_source: torch.Tensor | None,
        static: bool,
        *,
        linear: Linear,
    ) -> None:
        self.lm = lm
        self.static = static
        self.linear = linear
        self.layers: list[_LayerState] = []
        prefill_len = 0
        for index, layer in enumerate(_layers(lm)):
            time_dim = _time_dim(layer.self_attn)
            past_keys = prefill_state[f"transformer.layers.{index}.self_attn.past_keys"]
            past_values = prefill_state[f"transformer.layers.{index}.self_attn.past_values"]
            prefill_len = past_keys.shape[time_dim]
            shape = list(past_keys.shape)
            shape[time_dim] = capacity
            # Zeros, not empty(): a masked position still multiplies its value by 0, and 0 * NaN is NaN.
            keys, values = past_keys.new_zeros(shape), past_values.new_zeros(shape)
            keys.narrow(time_dim, 0, prefill_len).copy_(past_keys)
            values.narrow(time_dim, 0, prefill_len).copy_(past_values)
            self.layers.append(_LayerState(layer, keys, values, cross_source))
        self.length = prefill_len
        device = self.layers[0].keys.device
        # The step's position as a tensor, so that a captured graph reads the current one.
        self.position = torch.full((1,), prefill_len, dtype=torch.long, device=device)
        self.key_positions = torch.arange(capacity, device=device)
        self.capacity = capacity
        # Static shapes attend over this many cache positions (see fit_window).
        self.window = capacity
        self.embeddings = _embedding_weights(lm)
        self.out_norm = _bound_norm(lm.out_norm) if lm.out_norm else None
        self.out_linears = _linear_weights(lm)

    # -------------------------------------------------------- attention

    def _attend(
        self,
        attn: _Attention,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        mask: torch.Tensor | None,
        out_dtype: torch.dtype,
    ) -> torch.Tensor:
        """audiocraft's attention arithmetic for one query step (``StreamingMultiheadAttention.forward``)."""
        if attn.as_float32:
            q, k, v = q.float(), k.float(), v.float()
        if attn.memory_efficient:
            # One query and no mask: audiocraft calls SDPA with is_causal=False.
            x = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.0)
        else:
            q = q / q.shape[-1] ** 0.5
            # Like audiocraft while streaming: the scores in float32 on CUDA (safe_streaming).
            if attn.safe_streaming and q.device.type == "cuda":
                # (No autocast cache: it would not survive graph capture, and activations are never cached.)
                with torch.autocast(device_type="cuda", dtype=torch.float32, cache_enabled=False):
                    scores = torch.einsum("b t h d,b k h d-> b h t k", q, k)
            else:
                scores = torch.einsum("b t h d,b k h d-> b h t k", q, k)
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            weights = torch.softmax(scores, dim=-1).to(v)
            x = torch.einsum("b h t k, b k h d -> b t h d", weights, v)
        x = x.to(out_dtype)
        return self.linear(_merge_heads(x, attn.time_dim), attn.out_weight, attn.out_bias)

    def _self_attention(self, state: _LayerState, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        attn = state.self_attn
        time_dim = attn.time_dim
        projected = self.linear(x, attn.in_weight, attn.in_bias)
        b, t, _ = projected.shape
        packed = projected.view(b, t, 3, attn.heads, -1)
        if time_dim == 2:
            packed = packed.permute(0, 3, 2, 1, 4)  # b h p t d
        q, k, v = packed.unbind(dim=2)
        if self.static:
            state.keys.index_copy_(time_dim, self.position, k)
            state.values.index_copy_(time_dim, self.position, v)
            length = self.window
        else:
            state.keys.narrow(time_dim, self.length, 1).copy_(k)
            state.values.narrow(time_dim, self.length, 1).copy_(v)
            length = self.length + 1
        keys = state.keys.narrow(time_dim, 0, length)
        values = state.values.narrow(time_dim, 0, length)
        return self._attend(attn, q, keys, values, mask, x.dtype)

    def _cross_attention(self, state: _LayerState, query: torch.Tensor) -> torch.Tensor:
        attn = state.cross
        assert attn is not None
        assert state.cross_keys is not None
        assert state.cross_values is not None
        q = _split_heads(self.linear(query, attn.in_weight, attn.in_bias), attn.heads, attn.time_dim)
        return self._attend(attn, q, state.cross_keys, state.cross_values, None, query.dtype)

    def _feed_forward(self, state: _LayerState, x: torch.Tensor) -> torch.Tensor:
        """``layer._ff_block`` (its dropout is the identity in eval mode)."""
        return self.linear(state.activation(self.linear(x, *state.linear1)), *state.linear2)

    # -------------------------------------------------------- the step

    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits [rows, K, 1, card] for the next position, after writing ``tokens`` [rows, K, 1] into the cache.

        Mirrors ``LMModel.forward`` → ``StreamingTransformer.forward`` →
        ``StreamingTransformerLayer.forward`` for one streamed step, operation for operation.

        Args:
            tokens: the codes of the current position (special tokens where the pattern has none).
        """
        x = _sum([F.embedding(tokens[:, k], weight) for k, weight in enumerate(self.embeddings)])
        transformer = self.lm.transformer
        positions = self.position.view(-1, 1, 1)
        pos_emb = create_sin_embedding(positions, x.shape[-1], max_period=transformer.max_period, dtype=x.dtype)
        x = x + transformer.positional_scale * pos_emb
        mask = None
        if self.static:
            mask = (self.key_positions[: self.window] <= self.position).view(1, 1, 1, -1)
        for state in self.layers:
            if state.norm_first:
                x = x + state.scale_1(self._self_attention(state, state.norm1(x), mask))
                if state.cross is not None:
                    x = x + state.scale_cross(self._cross_attention(state, state.norm_cross(x)))
                x = x + state.scale_2(self._feed_forward(state, state.norm2(x)))
            else:
                src = x
                x = state.norm1(x + state.scale_1(self._self_attention(state, x, mask)))
                if state.cross is not None:
                    # audiocraft's post-norm layer feeds the layer's input (src) to the cross-attention.
                    attended = self._cross_attention(state, src)
                    x = state.norm_cross(x + state.scale_cross(attended))
                x = state.norm2(x + state.scale_2(self._feed_forward(state, x)))
        if self.out_norm is not None:
            x = self.out_norm(x)
        return torch.stack([self.linear(x, weight, bias) for weight, bias in self.out_linears], dim=1)

    def fit_window(self, bucket: int) -> int:
        """Set :attr:`window` to the current position rounded up to a multiple of ``bucket`` (static shapes).

        Args:
            bucket: cache positions per static shape.
        """
        needed = self.length + 1
        self.window = min(self.capacity, -(-needed // bucket) * bucket)
        return self.window

    def advance(self) -> None:
        """Move to the next position (after :meth:`logits` wrote the current one)."""
        self.length += 1
        self.position.fill_(self.length)


class _GraphedSteps:
    """The one-token step captured as CUDA graphs, one per bucket of cache length.

    A graph's shapes are fixed, so each attends over a fixed number of cache positions (masking
    the ones not written yet). One graph for the whole window would read the whole cache at every
    step; a graph per ``bucket`` positions reads at most ``bucket`` positions more than needed.
    The graphs share one memory pool (they never run at the same time) and one token buffer.

    Args:
        step: a static-shape step model on CUDA.
        tokens: the first step's tokens [rows, K, 1] (shape and dtype of every step's).
        bucket: cache positions per graph.
    """

    def __init__(self, step: _StepModel, tokens: torch.Tensor, bucket: int) -> None:
        self.step = step
        self.bucket = bucket
        self.tokens = tokens.clone()
        self.graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self.pool: torch.cuda._POOL_HANDLE | None = None

    def _capture(self) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
        """Capture the step at the step model's current window (set by ``fit_window``)."""
        step = self.step
        enabled = torch.is_autocast_enabled("cuda")
        dtype = torch.get_autocast_dtype("cuda")
        # Autocast's weight-cast cache does not survive a captured region: capture without it.
        autocast = functools.partial(torch.autocast, "cuda", dtype=dtype, enabled=enabled, cache_enabled=False)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), autocast():
            # Warm-up writes this position's keys and values, the same ones the replay writes again.
            for _ in range(2):
                eager = step.logits(self.tokens)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool), autocast():
            output = step.logits(self.tokens)
        self.pool = graph.pool()
        graph.replay()
        scale = float(eager.float().abs().max()) or 1.0
        error = float((output.float() - eager.float()).abs().max())
        if not error <= 1e-2 * scale:
            raise RuntimeError(f"the captured step disagrees with the eager one (max error {error:.3g})")
        return graph, output

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits of the step at the step model's position (see :meth:`_StepModel.logits`)."""
        self.tokens.copy_(tokens)
        window = self.step.fit_window(self.bucket)
        if window not in self.graphs:
            self.graphs[window] = self._capture()
        graph, output = self.graphs[window]
        graph.replay()
        return output


# ---------------------------------------------------------------- the loop


def _guided_logits(
    all_logits: torch.Tensor, batch: int, cfg_coef: float, cfg_coef_beta: float | None, conditioned: bool
) -> torch.Tensor:
    """Classifier-free guidance and the last position, as ``LMModel._sample_next_token``: [B, K, card]."""
    if not conditioned:
        logits = all_logits
    elif cfg_coef_beta is not None:
        cond_logits, wav_logits, uncond_logits = all_logits.split(batch, dim=0)
        logits = uncond_logits + cfg_coef * (wav_logits + cfg_coef_beta * (cond_logits - wav_logits) - uncond_logits)
    else:
        cond_logits, uncond_logits = all_logits.split(batch, dim=0)
        logits = uncond_logits + (cond_logits - uncond_logits) * cfg_coef
    logits = logits.permute(0, 1, 3, 2)
    return logits[..., -1]


def _pick(logits: torch.Tensor, use_sampling: bool, temp: float, top_k: int, top_p: float) -> torch.Tensor:
    """The next token [B, K, 1], drawn exactly as ``LMModel._sample_next_token`` draws it."""
    if use_sampling and temp > 0.0:
        probs = torch.softmax(logits / temp, dim=-1)
        if top_p > 0.0:
            return audiocraft_utils.sample_top_p(probs, p=top_p)
        if top_k > 0:
            return audiocraft_utils.sample_top_k(probs, k=top_k)
        return audiocraft_utils.multinomial(probs, num_samples=1)
    return torch.argmax(logits, dim=-1, keepdim=True)


def _cfg_conditions(
    lm: LMModel, conditions: list[ConditioningAttributes], cfg_coef_beta: float | None
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The condition tensors of the call, conditional and null rows stacked, as ``LMModel.generate`` builds them."""
    if not conditions:
        return {}
    if cfg_coef_beta is not None:
        wav_conditions = _drop_description_condition(conditions)
        null_conditions = ClassifierFreeGuidanceDropout(p=1.0)(conditions)
        conditions = conditions + wav_conditions + null_conditions
    else:
        null_conditions = ClassifierFreeGuidanceDropout(p=1.0)(conditions)
        conditions = conditions + null_conditions
    return lm.condition_provider(lm.condition_provider.tokenize(conditions))


@torch.no_grad()
def fast_generate(
    lm: LMModel,
    prompt: torch.Tensor | None = None,
    conditions: list[ConditioningAttributes] | None = None,
    num_samples: int | None = None,
    max_gen_len: int = 256,
    use_sampling: bool = True,
    temp: float = 1.0,
    top_k: int = 250,
    top_p: float = 0.0,
    cfg_coef: float | None = None,
    cfg_coef_beta: float | None = None,
    two_step_cfg: bool | None = None,
    remove_prompts: bool = False,
    check: bool = False,
    callback: Progress | None = None,
    *,
    options: DecodeOptions | None = None,
    static: bool | None = None,
) -> torch.Tensor:
    """``LMModel.generate`` with jamgen's step (same arguments, same tokens).

    Args:
        prompt: prompt codes [B, K, T].
        conditions: one ConditioningAttributes per row.
        num_samples: rows when there is neither prompt nor conditions.
        max_gen_len: frames of the window.
        use_sampling: sample (else argmax).
        temp: sampling temperature.
        top_k: top-k sampling.
        top_p: top-p sampling (wins over top_k when > 0).
        cfg_coef: classifier-free guidance coefficient (None: the LM's).
        cfg_coef_beta: double CFG coefficient (MusicGen-Style), or None.
        two_step_cfg: separate conditional and unconditional passes (audiocraft's loop does these).
        remove_prompts: drop the prompt from the output.
        check: run audiocraft's extra checks (audiocraft's loop does these).
        callback: progress, (steps done, steps in the window).
        options: decode switches (None: the defaults).
        static: the static-shape step of CUDA graphs (None: when graphs are used). Tests run it
            eagerly on the CPU.
    """
    options = options or DecodeOptions()
    conditions = list(conditions or [])
    two_step_cfg = lm.two_step_cfg if two_step_cfg is None else two_step_cfg
    reason = unsupported_reason(lm)
    if reason is None and two_step_cfg and conditions:
        reason = "two-step CFG"
    if reason is None and check:
        reason = "checks requested"
    if reason is None and cfg_coef_beta is not None and not conditions:
        reason = "double CFG without conditions"
    if reason is not None:
        log.debug("audiocraft's decode loop: %s", reason)
        return LMModel.generate(
            lm, prompt, conditions, num_samples, max_gen_len, use_sampling, temp, top_k, top_p,
            cfg_coef, cfg_coef_beta, two_step_cfg, remove_prompts, check, callback,
        )  # fmt: skip

    assert not lm.training, "generation shouldn't be used in training mode."
    device = next(iter(lm.parameters())).device
    if num_samples is None:
        num_samples = prompt.shape[0] if prompt is not None else len(conditions) if conditions else 1
    cfg_coef = lm.cfg_coef if cfg_coef is None else cfg_coef
    cfg_conditions = _cfg_conditions(lm, conditions, cfg_coef_beta)
    conditioned = bool(cfg_conditions)
    copies = (3 if cfg_coef_beta is not None else 2) if conditioned else 1

    if prompt is None:
        prompt = torch.zeros((num_samples, lm.num_codebooks, 0), dtype=torch.long, device=device)
    batch, codebooks, start_offset = prompt.shape
    assert start_offset < max_gen_len
    pattern = lm.pattern_provider.get_pattern(max_gen_len)
    gen_codes = torch.full((batch, codebooks, max_gen_len), UNKNOWN_TOKEN, dtype=torch.long, device=device)
    gen_codes[..., :start_offset] = prompt
    gen_sequence, _indexes, mask = pattern.build_pattern_sequence(gen_codes, lm.special_token_id)
    start = pattern.get_first_step_with_timesteps(start_offset)
    assert start is not None
    steps_total = gen_sequence.shape[-1]

    def place(offset: int, next_token: torch.Tensor) -> None:
        """Write a sampled token as LMModel.generate does (special token where the pattern has none, prompt kept)."""
        valid = mask[..., offset : offset + 1].expand(batch, -1, -1)
        next_token = torch.where(valid, next_token, lm.special_token_id)
        current = gen_sequence[..., offset : offset + 1]
        gen_sequence[..., offset : offset + 1] = torch.where(current == UNKNOWN_TOKEN, next_token, current)
        if callback is not None:
            callback(1 + offset - start, steps_total - start)

    # First model call: audiocraft's own streaming forward (prompt and prepended conditions), then its state.
    with lm.streaming():
        first = lm._sample_next_token(
            gen_sequence[..., :start], cfg_conditions, {}, use_sampling, temp, top_k, top_p,
            cfg_coef=cfg_coef, cfg_coef_beta=cfg_coef_beta, two_step_cfg=False,
        )  # fmt: skip
        prefill_state = {k: v for k, v in lm.get_streaming_state().items() if "past_" in k}
    place(start, first)
    if start + 1 < steps_total:
        cross_source = None
        if lm.fuser.fuse2cond["cross"]:
            probe = torch.zeros(batch * copies, 1, lm.dim, device=device)
            _, cross_source = lm.fuser(probe, cfg_conditions)
        some_keys = next(iter(prefill_state.values()))
        prefill_len = some_keys.shape[_time_dim(_layers(lm)[0].self_attn)]
        capacity = prefill_len + steps_total - start - 1
        use_graphs = options.cuda_graphs and device.type == "cuda"
        static = use_graphs if static is None else static
        linear = step_linear(lm, options.cpu_matmul)
        step = _StepModel(lm, prefill_state, capacity, cross_source, static=static, linear=linear)
        del prefill_state
        graphed: _GraphedSteps | None = None
        for offset in range(start + 1, steps_total):
            tokens = gen_sequence[..., offset - 1 : offset].repeat(copies, 1, 1)
            all_logits = None
            if use_graphs:
                try:
                    graphed = graphed or _GraphedSteps(step, tokens, options.graph_bucket)
                    all_logits = graphed(tokens)
                except Exception as exc:
                    log.warning("CUDA graph capture failed, decoding eagerly: %s", exc)
                    use_graphs, graphed = False, None
            if all_logits is None:
                if step.static:
                    step.fit_window(options.graph_bucket)
                all_logits = step.logits(tokens)
            logits = _guided_logits(all_logits, batch, cfg_coef, cfg_coef_beta, conditioned)
            place(offset, _pick(logits, use_sampling, temp, top_k, top_p))
            step.advance()
        del step, graphed

    assert not (gen_sequence == UNKNOWN_TOKEN).any()
    out_codes, _out_indexes, out_mask = pattern.revert_pattern_sequence(gen_sequence, special_token=UNKNOWN_TOKEN)
    assert (out_codes[..., :max_gen_len] != UNKNOWN_TOKEN).all()
    assert (out_mask[..., :max_gen_len] == 1).all()
    out_start = start_offset if remove_prompts else 0
    out_codes = out_codes[..., out_start:max_gen_len]
    assert (out_codes >= 0).all()
    assert (out_codes <= lm.card).all()
    return out_codes


@contextlib.contextmanager
def jamgen_decoding(model: MusicGen, options: DecodeOptions | None = None) -> Iterator[bool]:
    """Decode ``model``'s tokens with :func:`fast_generate` inside the block; yields whether it does.

    Everything else in ``MusicGen.generate*`` (conditions, windows, prompts, the codec) stays
    audiocraft's. With ``options.fast`` off, or a model the loop does not support, the block runs
    audiocraft's loop and yields False.

    Args:
        options: decode switches (None: the defaults).
    """
    options = options or DecodeOptions()
    lm = model.lm
    reason = None if options.fast else "switched off"
    reason = reason or unsupported_reason(lm)
    if reason is not None:
        log.info("decoding %s with audiocraft's loop: %s", model.name, reason)
        yield False
        return
    # An instance attribute shadows the method for the block (deleted below): mypy forbids assigning to methods.
    lm.generate = functools.partial(fast_generate, lm, options=options)  # type: ignore[method-assign]
    try:
        yield True
    finally:
        del lm.generate


__all__ = [
    "fast_generate",
    "jamgen_decoding",
    "unsupported_reason",
]
