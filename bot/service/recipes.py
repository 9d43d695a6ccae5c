"""A take's recipe: everything needed to make it again, in one typed value.

The store keeps a job's recipe as its ``model``, ``mode`` and ``prompt`` columns plus a
``params`` JSON object; :class:`Recipe` is the one place that reads and writes that object
(:meth:`Recipe.to_params`, :meth:`Recipe.from_job`). :meth:`Recipe.describe` is the recipe
as members see it (the ℹ️ Recipe button) and as it is written into every track's tags, by the
bot and by ``jamgen generate`` alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bot.engine.types import GenerationRequest, Mode, SamplingParams, batch_key
from bot.service.requests import AudioInput, JamRequest
from bot.store import Job

# Modes that condition on audio (an attachment or a take jamgen made).
# Modes that work on audio (an attachment or a take jamgen made): conditioning, or splitting into stems.
NEEDS_AUDIO = frozenset({Mode.MELODY, Mode.STYLE, Mode.CONTINUATION, Mode.STEMS})
_AUDIO_KEYS = ("audio_start", "audio_end", "audio_from_job", "audio_take", "audio_filename", "audio_stem", "input_path")
# Bookkeeping the params carry that is not part of the recipe members see.
_PRIVATE_KEYS = ("input_path", "upload_limit_bytes")
_DEFAULT = SamplingParams()
MAX_FILENAME_CHARS = 100


@dataclass(frozen=True)
class AudioReference:
    """Where a take's conditioning audio comes from, and which part of it.

    Args:
        from_job: an earlier job whose take is used (None for an attachment).
        take: which take of ``from_job`` (0-based).
        start: seconds into the audio where the excerpt begins (None = the mode's default).
        end: seconds where it ends (continuation; None = the end).
        filename: the attachment's name, for messages only (never used in a path).
        input_path: where the job keeps its attachment, once it owns it.
        stem: when ``from_job`` is a stems job, the stem of ``take`` (``drums`` …), for lineage.
        stem_of: … and the take that stem was split from.
    """

    from_job: str | None = None
    take: int = 0
    start: float | None = None
    end: float | None = None
    filename: str = ""
    input_path: str | None = None
    stem: str | None = None
    stem_of: str | None = None


@dataclass(frozen=True)
class Recipe:
    """What a job asked the engine for (the job's own id, takes and seed live on the job).

    Args:
        mode: how it is conditioned (``unconditional`` for text without a prompt).
        duration: seconds of new music per take (a continuation's prompt comes on top).
        sampling: the sampling parameters (the style ones only count for style takes).
        audio: the conditioning audio, if the member gave any.
        prompt_seconds: a continuation's prompt, kept at the start of the output.
        upload_limit_bytes: the largest file the delivery may carry (None = the configured one).
    """

    model: str
    mode: Mode
    prompt: str
    duration: float
    sampling: SamplingParams = field(default_factory=SamplingParams)
    audio: AudioReference | None = None
    prompt_seconds: float | None = None
    upload_limit_bytes: int | None = None

    # ------------------------------------------------------------------ building
    @classmethod
    def for_request(
        cls, request: JamRequest, *, model: str, mode: Mode, duration: float, upload_limit_bytes: int
    ) -> Recipe:
        """The recipe a checked request makes (the style parameters are kept for style takes only).

        Args:
            model: the model chosen for it.
            mode: its mode (text without a prompt is unconditional).
            duration: its checked duration.
            upload_limit_bytes: the largest file its delivery may carry.
        """
        source = request.audio
        audio = None
        if source is not None:
            audio = AudioReference(
                from_job=source.from_job,
                take=source.take,
                start=source.start,
                end=source.end,
                filename=source.filename[:MAX_FILENAME_CHARS],
            )
        return cls(
            model=model,
            mode=mode,
            prompt=request.prompt,
            duration=duration,
            sampling=_kept_sampling(request.sampling, mode),
            audio=audio,
            upload_limit_bytes=upload_limit_bytes,
        )

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, model: str, mode: Mode | str, prompt: str) -> Recipe:
        """Read a stored ``params`` object (older rows may lack keys: the defaults fill in).

        Args:
            params: the job's ``params``.
            model: the job's model column.
            mode: the job's mode column.
            prompt: the job's prompt column.
        """
        p = params
        sampling = SamplingParams(
            top_k=p.get("top_k", _DEFAULT.top_k),
            top_p=p.get("top_p", _DEFAULT.top_p),
            temperature=p.get("temperature", _DEFAULT.temperature),
            cfg_coef=p.get("cfg_coef", _DEFAULT.cfg_coef),
            use_sampling=p.get("use_sampling", _DEFAULT.use_sampling),
            cfg_coef_beta=p.get("cfg_coef_beta"),
            eval_q=p.get("eval_q", _DEFAULT.eval_q),
            excerpt_length=p.get("excerpt_length", _DEFAULT.excerpt_length),
        )
        audio = None
        if any(key in p for key in _AUDIO_KEYS):
            audio = AudioReference(
                from_job=p.get("audio_from_job"),
                take=int(p.get("audio_take") or 0),
                start=p.get("audio_start"),
                end=p.get("audio_end"),
                filename=p.get("audio_filename") or "",
                input_path=p.get("input_path"),
                stem=p.get("audio_stem"),
                stem_of=p.get("audio_stem_of"),
            )
        upload_limit = p.get("upload_limit_bytes")
        return cls(
            model=model,
            mode=Mode(mode),
            prompt=prompt,
            duration=float(p.get("duration", 0.0)),
            sampling=sampling,
            audio=audio,
            prompt_seconds=p.get("prompt_seconds"),
            upload_limit_bytes=None if upload_limit is None else int(upload_limit),
        )

    @classmethod
    def from_job(cls, job: Job) -> Recipe:
        """A stored job's recipe."""
        return cls.from_params(job.params, model=job.model, mode=job.mode, prompt=job.prompt)

    @classmethod
    def for_generation(cls, request: GenerationRequest, *, filename: str = "") -> Recipe:
        """The recipe of a request made without a job (``jamgen generate``).

        Args:
            request: what the engine was asked (a continuation's duration includes its prompt).
            filename: the conditioning file's name, if any.
        """
        prompt_s = round(request.audio_seconds, 3) if request.mode == Mode.CONTINUATION else None
        return cls(
            model=request.model,
            mode=request.mode,
            prompt=request.prompt,
            duration=round(request.duration - (prompt_s or 0.0), 3),
            sampling=_kept_sampling(request.sampling, request.mode),
            audio=AudioReference(filename=filename[:MAX_FILENAME_CHARS]) if request.audio is not None else None,
            prompt_seconds=prompt_s,
        )

    def with_prompt_seconds(self, seconds: float) -> Recipe:
        """The recipe with a continuation's prompt length (rounded to the millisecond)."""
        return replace(self, prompt_seconds=round(seconds, 3))

    def with_input(self, path: str) -> Recipe:
        """The recipe once the job keeps its attachment at ``path``."""
        return replace(self, audio=replace(self.audio or AudioReference(), input_path=path))

    def with_stem(self, stem: str, stem_of: str | None) -> Recipe:
        """The recipe once its input is known to be one stem of a take (lineage: "from the drums of …")."""
        return replace(self, audio=replace(self.audio or AudioReference(), stem=stem, stem_of=stem_of))

    def with_sampling(self, sampling: SamplingParams) -> Recipe:
        """The recipe with other sampling parameters (a style excerpt fitted to its clip)."""
        return replace(self, sampling=_kept_sampling(sampling, self.mode))

    # ------------------------------------------------------------------ reading
    def to_params(self) -> dict[str, Any]:
        """The ``params`` object the store keeps (the inverse of :meth:`from_params`)."""
        s = self.sampling
        params: dict[str, Any] = {
            "duration": self.duration,
            "top_k": s.top_k,
            "top_p": s.top_p,
            "temperature": s.temperature,
            "cfg_coef": s.cfg_coef,
            "use_sampling": s.use_sampling,
        }
        if self.mode == Mode.STYLE:
            params |= {"cfg_coef_beta": s.cfg_coef_beta, "eval_q": s.eval_q, "excerpt_length": s.excerpt_length}
        if self.audio is not None:
            params |= {
                "audio_start": self.audio.start,
                "audio_end": self.audio.end,
                "audio_from_job": self.audio.from_job,
                "audio_take": self.audio.take,
                "audio_filename": self.audio.filename,
            }
            if self.audio.stem:
                params |= {"audio_stem": self.audio.stem, "audio_stem_of": self.audio.stem_of}
        if self.upload_limit_bytes is not None:
            params["upload_limit_bytes"] = self.upload_limit_bytes
        if self.prompt_seconds is not None:
            params["prompt_seconds"] = self.prompt_seconds
        if self.audio is not None and self.audio.input_path:
            params["input_path"] = self.audio.input_path
        return params

    def describe(
        self,
        *,
        job_id: str,
        parent_id: str | None = None,
        takes: int = 1,
        seed: int | None = None,
        take: int | None = None,
    ) -> dict[str, Any]:
        """The recipe as members see it and as tracks carry it in their tags.

        Args:
            job_id: the job (``cli`` for ``jamgen generate``).
            parent_id: the job it was made from.
            takes: how many takes the job has.
            seed: the seed one take was made with.
            take: which take (0-based; shown 1-based).
        """
        params = {k: v for k, v in self.to_params().items() if k not in _PRIVATE_KEYS and v is not None}
        recipe: dict[str, Any] = {
            "job_id": job_id,
            "parent_id": parent_id,
            "model": self.model,
            "mode": self.mode.value,
            "prompt": self.prompt,
            "takes": takes,
            **params,
        }
        if seed is not None:
            recipe["seed"] = seed
        if take is not None:
            recipe["take"] = take + 1
        return recipe

    @property
    def needs_audio(self) -> bool:
        """Whether the mode conditions on audio."""
        return self.mode in NEEDS_AUDIO

    @property
    def request_mode(self) -> Mode:
        """The mode to ask for again (an unconditional take is a text take without a prompt)."""
        return Mode.TEXT if self.mode == Mode.UNCONDITIONAL else self.mode

    @property
    def generation_seconds(self) -> float:
        """Seconds the engine makes per take: a continuation's prompt and then the new music."""
        prompt_s = (self.prompt_seconds or 0.0) if self.mode == Mode.CONTINUATION else 0.0
        return self.duration + prompt_s

    def batch_key(self, *, seed: int | None = None) -> tuple[object, ...] | None:
        """Which queued jobs may share a generate call (the engine's own rule, :func:`bot.engine.types.batch_key`)."""
        return batch_key(
            self.model,
            self.mode,
            self.generation_seconds,
            self.sampling,
            prompt_seconds=self.prompt_seconds or 0.0,
            seed=seed,
        )

    def audio_input(self, data: bytes | None) -> AudioInput | None:
        """The conditioning audio to ask for again: the attachment's bytes, or the same take of a job."""
        if self.audio is None or (data is None and not self.audio.from_job):
            return None
        return AudioInput(
            data=data,
            from_job=None if data is not None else self.audio.from_job,
            take=self.audio.take,
            start=self.audio.start,
            end=self.audio.end,
        )


def job_recipe(job: Job, *, seed: int | None = None, take: int | None = None) -> dict[str, Any]:
    """A stored job's recipe as members see it (see :meth:`Recipe.describe`).

    Args:
        seed: the seed one of its takes was made with.
        take: which take (0-based).
    """
    return Recipe.from_job(job).describe(job_id=job.id, parent_id=job.parent_id, takes=job.takes, seed=seed, take=take)


def take_seed(job: Job, take: int) -> int | None:
    """The seed take ``take`` (0-based) of a rendered job was made with (the job's own seed before that)."""
    takes = (job.extra or {}).get("takes") or []
    return takes[take].get("seed") if take < len(takes) else job.seed


def _kept_sampling(sampling: SamplingParams, mode: Mode) -> SamplingParams:
    """The sampling a job keeps: the style-only parameters are stored for style takes only."""
    if mode == Mode.STYLE:
        return sampling
    return replace(
        sampling,
        cfg_coef_beta=_DEFAULT.cfg_coef_beta,
        eval_q=_DEFAULT.eval_q,
        excerpt_length=_DEFAULT.excerpt_length,
    )
