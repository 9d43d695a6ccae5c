"""Intake: everything a take goes through before the store holds it as a job.

:meth:`Intake.admit` joins the take to its jam, applies the server's channel and model
policy (:class:`ModelPolicy`), checks the limits, and stages the conditioning audio: an
attachment is probed once and decoded once, at the model's rate, and the excerpt the mode
conditions on is cut from it. :meth:`Intake.commit` hands the result to the store, which
checks the caps and charges the quota, then gives the job its attachment and keeps the
excerpt in the job's folder, so the scheduler never decodes the file again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bot import audio
from bot.audio.inputs import silence_warnings
from bot.audio.probe import check_size
from bot.engine.registry import MODELS, ModelSpec, get_model_spec
from bot.engine.types import Mode, ModelUnavailableError
from bot.engine.validation import (
    DISCORD_OPTIONS,
    MESSAGE_OPTIONS,
    continuation_cut_note,
    continuation_prompt_seconds,
    fit_style_to_clip,
)
from bot.errors import ChannelNotAllowedError, UserInputError
from bot.service.config import Paths, ServiceConfig, remove_folder
from bot.service.recipes import NEEDS_AUDIO, AudioReference, Recipe
from bot.service.requests import PERSONAL, AudioInput, JamRequest
from bot.service.session_rules import join_session
from bot.store import Job, JobNotFoundError, JobState, JobStore, NewJob, Submission

log = logging.getLogger("jamgen.service")


class ModelPolicy:
    """Which models members may pick: the admin's list, then each server's own."""

    def __init__(self, config: ServiceConfig, store: JobStore) -> None:
        self.config = config
        self.store = store

    def available(self, guild_enabled: Sequence[str] = ()) -> list[str]:
        """Models members may pick here, in registry order.

        Args:
            guild_enabled: the server's own list (empty = all the admin allows).
        """
        # Separators split takes into stems (JAMGEN_STEMS_MODEL); they are no model a member picks.
        names = [n for n, s in MODELS.items() if not s.separator and (not s.debug or self.config.debug_models)]
        if self.config.enabled_models:
            names = [n for n in names if n in self.config.enabled_models]
        if guild_enabled:
            names = [n for n in names if n in guild_enabled]
        return names

    def resolve(self, requested: str | None, guild_default: str | None, enabled: Sequence[str]) -> ModelSpec:
        """The model a request gets, or a friendly refusal.

        Args:
            requested: the member's choice.
            guild_default: the server's default model.
            enabled: models the server allows (empty = all the admin allows).
        """
        name = requested or guild_default or self.config.default_model
        spec = get_model_spec(name)
        if name not in self.available(enabled):
            raise ModelUnavailableError(f"The model '{name}' is not enabled on this server.")
        return spec

    async def models_for_guild(self, guild_id: int | None, mode: Mode | None = None) -> list[str]:
        """Models members of a server may pick (optionally only those able to do ``mode``)."""
        guild = await self.store.get_guild_settings(guild_id) if guild_id else None
        names = self.available(guild.enabled_models if guild else ())
        return [n for n in names if mode is None or get_model_spec(n).supports(mode)]

    async def default_model_for(self, guild_id: int | None, mode: Mode) -> str | None:
        """The server's default model when it can do ``mode``, else the first enabled model that can."""
        guild = await self.store.get_guild_settings(guild_id) if guild_id else None
        preferred = (guild.default_model if guild else None) or self.config.default_model
        able = await self.models_for_guild(guild_id, mode)
        if preferred in able:
            return preferred
        real = [n for n in able if not get_model_spec(n).debug]
        return next(iter(real or able), None)


@dataclass(frozen=True)
class Admission:
    """A checked take, ready for the store.

    Args:
        request: the request as it joins its jam (the prompt decorated, the jam's model).
        channel_id: where it is delivered.
        spec: its model.
        recipe: what the job will store.
        cost: quota seconds it costs.
        warnings: notes for the member's receipt.
        excerpt: the audio it conditions on, at the model's rate (None without audio).
        staged: its attachment, in the staging folder until the job owns it.
    """

    request: JamRequest
    channel_id: int
    spec: ModelSpec
    recipe: Recipe
    cost: float
    warnings: tuple[str, ...] = ()
    excerpt: np.ndarray | None = None
    staged: Path | None = None


def cut_excerpt(wav: np.ndarray, spec: ModelSpec, recipe: Recipe) -> tuple[np.ndarray, float]:
    """The part of decoded audio the recipe's mode conditions on, and the seconds it was cut from."""
    sr = spec.sample_rate
    source = recipe.audio or AudioReference()
    if recipe.mode == Mode.STEMS:  # the whole track is split
        return wav, wav.shape[-1] / sr
    if recipe.mode == Mode.MELODY:
        return audio.melody_excerpt(wav, sr, recipe.duration, start_s=source.start or 0.0).audio, wav.shape[-1] / sr
    if recipe.mode == Mode.STYLE:
        clip = audio.style_excerpt(wav, sr, start_s=source.start, length_s=recipe.sampling.excerpt_length)
        return clip.audio, wav.shape[-1] / sr
    # Continuation: the chosen window of the file (default all of it), then the last seconds that fit the model.
    first = round((source.start or 0.0) * sr)
    last = wav.shape[-1] if source.end is None else round(source.end * sr)
    if last - first < sr:
        raise UserInputError("Continuation needs at least 1 s of audio between start and end.")
    window = wav[:, first:last]
    prompt = audio.continuation_prompt(window, sr, seconds=continuation_prompt_seconds(spec))
    return prompt.audio, window.shape[-1] / sr


def refuse_a_stem(job: Job | None) -> None:
    """Stems are split from takes: a stems job's own outputs are not split again."""
    if job is not None and job.mode == Mode.STEMS:
        raise UserInputError("That is already a stem; split the take it came from instead.")


class JobInputs:
    """A job's own inputs: the take it works from, the attachment it keeps, the excerpt kept at submit."""

    def __init__(self, config: ServiceConfig, store: JobStore, paths: Paths) -> None:
        self.config = config
        self.store = store
        self.paths = paths

    async def parent_output(self, job_id: str | None, take: int) -> Path:
        """The file of take ``take`` of an earlier job, to work from."""
        parent = await self.store.get_job(job_id) if job_id else None
        if parent is None:
            raise JobNotFoundError(job_id or "", f"There is no take with id {job_id}.")
        if parent.state not in (JobState.RENDERED, JobState.DELIVERED) or take >= len(parent.outputs):
            raise UserInputError(f"Take {job_id} has no audio to work from yet.")
        path = Path(parent.outputs[take])
        if not path.exists():
            raise UserInputError(f"The audio of take {job_id} has been cleaned up; attach the file instead.")
        return path

    async def adopt(self, job: Job, staged: Path, recipe: Recipe) -> Job:
        """Move a staged attachment into the job's folder and record where it is."""
        final = self.paths.input_file(job.id, staged.suffix)
        final.parent.mkdir(parents=True, exist_ok=True)
        staged.replace(final)
        remove_folder(staged.parent)
        return await self.store.update_job(job.id, params=recipe.with_input(str(final)).to_params())

    async def keep_excerpt(self, job_id: str, excerpt: np.ndarray) -> None:
        """Keep the excerpt a job conditions on, so that it is never decoded again."""
        await asyncio.to_thread(self._save, self.paths.excerpt(job_id), excerpt, job_id)

    @staticmethod
    def _save(path: Path, excerpt: np.ndarray, job_id: str) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, excerpt, allow_pickle=False)
        except OSError as exc:  # the scheduler decodes the input again instead
            log.warning("could not keep the excerpt of job %s: %s", job_id, exc)

    async def excerpt_for(self, job: Job, recipe: Recipe) -> np.ndarray | None:
        """The audio a job conditions on: the excerpt kept at submit (decoded again only if it is missing)."""
        if not recipe.needs_audio:
            return None
        try:
            return await asyncio.to_thread(np.load, self.paths.excerpt(job.id), allow_pickle=False)
        except (OSError, ValueError) as exc:
            log.info("job %s has no kept excerpt (%s); decoding its input again", job.id, exc)
        spec = get_model_spec(job.model)
        source = recipe.audio or AudioReference()
        path = Path(source.input_path) if source.input_path else await self.parent_output(source.from_job, source.take)
        wav = await audio.decode(path, spec.sample_rate, spec.channels, self.config.audio_limits)
        return cut_excerpt(wav, spec, recipe)[0]

    def forget_excerpt(self, job_id: str) -> None:
        """Delete a job's kept excerpt once it will not run again."""
        self.paths.excerpt(job_id).unlink(missing_ok=True)


class Intake:
    """Checks takes and stages their audio (see the module's docstring).

    Args:
        models: which models a server allows.
        inputs: the jobs' own input files.
        check_room: raises :class:`QueueFullError` when the queue is full (the one queue check).
    """

    def __init__(
        self,
        config: ServiceConfig,
        store: JobStore,
        paths: Paths,
        models: ModelPolicy,
        inputs: JobInputs,
        check_room: Callable[[], None],
    ) -> None:
        self.config = config
        self.store = store
        self.paths = paths
        self.models = models
        self.inputs = inputs
        self._check_room = check_room

    def check_attachment_size(self, size: int) -> None:
        """Refuse an attachment by its declared size before downloading it."""
        check_size(size, self.config.audio_limits)

    def is_admin(self, user_id: int) -> bool:
        """Whether ``user_id`` administers this jamgen (never refused for quota, goes first)."""
        return user_id in self.config.admin_user_ids

    # ------------------------------------------------------------------ before the store
    async def admit(self, request: JamRequest) -> Admission:
        """Check a request and stage its audio; nothing is charged yet.

        Raises:
            UserInputError: a subclass saying what is wrong (channel, model, caps, queue, input).
        """
        cfg = self.config
        channel_id = request.channel_id
        if channel_id is None:
            raise UserInputError("jamgen needs a channel to post the take in.")
        # Inside a jam's thread the take joins the jam: its tempo/key/meter and default model (session_rules.py).
        request, home_channel_id = await join_session(self.store, request, max_prompt_length=cfg.max_prompt_length)
        guild = await self.store.get_guild_settings(request.guild_id) if request.guild_id else None
        if guild and guild.allowed_channel_ids and home_channel_id not in guild.allowed_channel_ids:
            raise ChannelNotAllowedError(tuple(guild.allowed_channel_ids))
        if request.mode == Mode.STEMS:
            return await self._admit_stems(request, channel_id)
        spec = self.models.resolve(
            request.model, guild.default_model if guild else None, guild.enabled_models if guild else ()
        )
        mode = Mode.UNCONDITIONAL if request.mode == Mode.TEXT and not request.prompt.strip() else request.mode
        if not spec.supports(mode):
            able = ", ".join(n for n in self.models.available() if get_model_spec(n).supports(mode)) or "none here"
            raise ModelUnavailableError(f"The model '{spec.name}' cannot do {mode.value}. Models that can: {able}.")
        max_duration = min(cfg.max_duration, guild.max_duration or cfg.max_duration) if guild else cfg.max_duration
        duration = float(request.duration or min(cfg.default_duration, max_duration))
        if not 1 <= duration <= max_duration:
            raise UserInputError(f"Duration must be between 1 and {max_duration} seconds; you asked for {duration:g}.")
        max_takes = min(cfg.max_takes, guild.max_takes or cfg.max_takes) if guild else cfg.max_takes
        if not 1 <= request.takes <= max_takes:
            raise UserInputError(f"You can ask for 1 to {max_takes} takes at once.")
        if len(request.prompt) > cfg.max_prompt_length:
            raise UserInputError(
                f"Your prompt is {len(request.prompt)} characters long; the limit is {cfg.max_prompt_length}. "
                "Shorter prompts work better anyway: genre, instruments, mood, tempo."
            )
        if mode in NEEDS_AUDIO and request.audio is None:
            raise UserInputError(f"{mode.value.capitalize()} needs an audio file or a take to work from.")
        self._check_room()
        recipe = Recipe.for_request(
            request,
            model=spec.name,
            mode=mode,
            duration=duration,
            upload_limit_bytes=request.upload_limit_bytes or cfg.upload_limit_bytes,
        )
        recipe = await self._with_stem_lineage(recipe)
        cost = round(duration * spec.cost_weight * request.takes, 3)
        if request.audio is None or mode not in NEEDS_AUDIO:
            return Admission(request, channel_id, spec, recipe, cost)
        staged, wav, warnings = await self._stage(request.audio, spec)
        try:
            admission = Admission(request, channel_id, spec, recipe, cost, tuple(warnings), None, staged)
            return self._with_excerpt(admission, wav)
        except BaseException:
            if staged is not None:
                remove_folder(staged.parent)
            raise

    async def _admit_stems(self, request: JamRequest, channel_id: int) -> Admission:
        """A stems job: the whole track at the separator's rate, charged ``stems_cost`` per second of it."""
        spec = get_model_spec(self.config.stems_model)
        # Stems are not a take of a jam (its tree, budget and summary count takes): no prompt, no session.
        request = replace(request, prompt="", session_id=None, takes=1)
        source = request.audio
        if source is None:
            raise UserInputError("Stems need a take or an audio file to split.")
        if source.data is None:
            refuse_a_stem(await self.store.get_job(source.from_job or ""))
        self._check_room()
        staged, wav, warnings = await self._stage(source, spec)
        try:
            duration = round(wav.shape[-1] / spec.sample_rate, 3)
            upload_limit = request.upload_limit_bytes or self.config.upload_limit_bytes
            recipe = Recipe.for_request(
                request, model=spec.name, mode=Mode.STEMS, duration=duration, upload_limit_bytes=upload_limit
            )
            cost = round(duration * self.config.stems_cost, 3)
            return Admission(request, channel_id, spec, recipe, cost, tuple(warnings), wav, staged)
        except BaseException:
            if staged is not None:
                remove_folder(staged.parent)
            raise

    async def _with_stem_lineage(self, recipe: Recipe) -> Recipe:
        """A take made from one stem of a stems job records which stem of which take it was."""
        source = recipe.audio
        if source is None or not source.from_job:
            return recipe
        stems = await self.store.stems_of_job(source.from_job)
        if source.take >= len(stems):
            return recipe
        return recipe.with_stem(stems[source.take].stem, stems[source.take].source_job_id)

    def _with_excerpt(self, admission: Admission, wav: np.ndarray) -> Admission:
        """Cut the excerpt; fit a style take to a short clip; check a continuation's total length."""
        spec, recipe, warnings = admission.spec, admission.recipe, list(admission.warnings)
        excerpt, available_s = cut_excerpt(wav, spec, recipe)
        excerpt_s = excerpt.shape[-1] / spec.sample_rate
        if recipe.mode == Mode.CONTINUATION:
            note = continuation_cut_note(spec, available_s, excerpt_s)
            warnings += [note] if note else []
            # The prompt is kept at the start of the output; ``duration`` counts the new music only.
            recipe = recipe.with_prompt_seconds(excerpt_s)
            limit = self.config.max_duration
            if recipe.duration + excerpt_s > limit:
                raise UserInputError(
                    f"With the {excerpt_s:.0f} s it continues from, the track would be "
                    f"{recipe.duration + excerpt_s:.0f} s long; the limit is {limit} s. Ask for at most "
                    f"{max(1, int(limit - excerpt_s))} s ({DISCORD_OPTIONS.duration})."
                )
        if recipe.mode == Mode.STYLE:
            # A clip shorter than the excerpt length gives all it has (the one rule, bot/engine/validation.py).
            names = DISCORD_OPTIONS if admission.request.interaction_id is not None else MESSAGE_OPTIONS
            fitted = fit_style_to_clip(recipe.sampling, excerpt_s, names)
            warnings += [fitted.note] if fitted.note else []
            if fitted.sampling != recipe.sampling:
                recipe = recipe.with_sampling(fitted.sampling)
                excerpt, _ = cut_excerpt(wav, spec, recipe)
        return replace(admission, recipe=recipe, warnings=tuple(warnings), excerpt=excerpt)

    async def _stage(self, source: AudioInput, spec: ModelSpec) -> tuple[Path | None, np.ndarray, list[str]]:
        """Decode the conditioning audio at the model's rate (an attachment is saved in staging first)."""
        limits = self.config.audio_limits
        if source.data is None:
            path = await self.inputs.parent_output(source.from_job, source.take)
            return None, await audio.decode(path, spec.sample_rate, spec.channels, limits), []
        token = uuid.uuid4().hex[:12]
        folder = self.paths.staging(token)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            # Probed once while saving, decoded once here: the decode checks the whole file (cut off, too long).
            saved = await audio.save_attachment(source.data, folder, token, limits, verify=False)
            wav = await audio.decode(saved.path, spec.sample_rate, spec.channels, limits, info=saved.info)
            warnings = await asyncio.to_thread(silence_warnings, wav)
        except BaseException:
            remove_folder(folder)
            raise
        return saved.path, wav, list(warnings)

    # ------------------------------------------------------------------ the store, then the job's own folder
    async def commit(self, admission: Admission) -> Submission:
        """Submit to the store (caps, quota), then give the job its attachment and its excerpt."""
        cfg, request = self.config, admission.request
        try:
            submission = await self.store.submit(
                NewJob(
                    user_id=request.user_id,
                    guild_id=request.guild_id,
                    channel_id=admission.channel_id,
                    interaction_id=request.interaction_id,
                    reply_to_message_id=request.reply_to_message_id,
                    mode=admission.recipe.mode.value,
                    model=admission.spec.name,
                    prompt=request.prompt,
                    params=admission.recipe.to_params(),
                    takes=request.takes,
                    seed=request.seed,
                    parent_id=request.parent_id or (request.audio.from_job if request.audio else None),
                    session_id=request.session_id,
                    priority=1 if self.is_admin(request.user_id) else 0,
                    # Delivery reads it after a restart too: a personal job never posts in its channel.
                    extra={PERSONAL: True} if request.personal else {},
                ),
                cost=admission.cost,
                default_budget=cfg.daily_budget_seconds,
                max_pending_user=cfg.max_pending_per_user,
                max_pending_guild=cfg.max_pending_per_guild,
                role_ids=request.role_ids,
                is_admin=self.is_admin(request.user_id),
            )
        except BaseException:
            if admission.staged is not None:
                remove_folder(admission.staged.parent)
            raise
        job = submission.job
        if admission.staged is not None:
            job = await self.inputs.adopt(job, admission.staged, admission.recipe)
        if admission.excerpt is not None:
            await self.inputs.keep_excerpt(job.id, admission.excerpt)
        return replace(submission, job=job)
