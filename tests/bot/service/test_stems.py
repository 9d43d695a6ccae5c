"""Stems through the service: a stems job of its own kind, charged a share of the take, kept once made."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bot import audio
from bot.engine.types import STEM_NAMES, EngineError, Mode
from bot.errors import UserInputError
from bot.service import AudioInput, JamRequest
from bot.service.bounce import StemsMissingError, parse_stems
from bot.service.session_tree import build_tree
from bot.service.stem_remixes import FOLLOW_UPS
from tests.harness import FAKE_STEM_SHARES, FakeEngine, build_harness, final_jobs, wav_bytes

MEMBER = {"user_id": 7, "guild_id": 5, "channel_id": 6}


async def _take(h, seconds: float = 2.0) -> str:
    receipt = await h.service.submit(JamRequest(**MEMBER, mode=Mode.TEXT, prompt="drums and bass", duration=seconds))
    await h.wait_settled(1)
    return receipt.job_id


async def test_a_take_is_split_into_four_stems_charged_a_share_and_kept_with_their_source(harness):
    take_id = await _take(harness)
    before = (await harness.service.quota(7, 5)).used
    receipt = await harness.service.submit(await harness.service.stems_request(take_id, 0, **MEMBER))
    await harness.wait_settled(2)
    job = await harness.service.job(receipt.job_id)
    assert job.mode == Mode.STEMS
    assert job.model == "debug-stems"
    assert job.parent_id == take_id
    assert receipt.cost == pytest.approx(2.0 * 0.25)
    assert (await harness.service.quota(7, 5)).used == pytest.approx(before + 0.5)
    delivered = harness.deliverer.delivered[-1]
    assert [t.stem for t in delivered.takes] == list(STEM_NAMES)
    stems = await harness.store.stems_of_job(job.id)
    assert [(s.stem, s.source_job_id, s.source_take) for s in stems] == [(n, take_id, 0) for n in STEM_NAMES]
    assert [s.path for s in stems] == [str(t.path) for t in delivered.takes]
    # The engine got the whole take at the separator's rate (44.1 kHz stereo), one request.
    (request,) = harness.engine.calls[-1]
    assert request.mode == Mode.STEMS
    assert request.audio.shape[0] == 2
    assert request.audio.shape[-1] / 44100 == pytest.approx(2.0, abs=0.06)
    # Every stem is as long as the take, and levelled like a take: the quiet 0.1 share comes out as loud
    # as the 0.4 one (loudness levelling), not four times quieter.
    levels = []
    for take in delivered.takes:
        info = await audio.probe(take.path, audio.AudioLimits())
        assert info.duration_s == pytest.approx(2.0, abs=0.05)
        wav = await audio.decode(take.path, 44100, 2, audio.AudioLimits())
        levels.append(float(np.sqrt(np.mean(wav**2))))
    assert FAKE_STEM_SHARES[0] / FAKE_STEM_SHARES[-1] == 4
    assert max(levels) / min(levels) < 1.5
    assert delivered.takes[0].waveform_path is not None
    assert delivered.takes[0].waveform_path.exists()


async def test_the_stems_of_a_take_are_found_again_while_waiting_and_once_made(harness):
    take_id = await _take(harness)
    assert await harness.service.find_stems(take_id, 0) is None
    receipt = await harness.service.submit(await harness.service.stems_request(take_id, 0, **MEMBER))
    assert (await harness.service.find_stems(take_id, 0)).id == receipt.job_id  # queued or running: found
    await harness.wait_settled(2)
    assert (await harness.service.find_stems(take_id, 0)).id == receipt.job_id
    assert await harness.service.find_stems(take_id, 1) is None
    # Retention removes the files: the stems are made again on the next request.
    await harness.store.clear_outputs(receipt.job_id)
    assert await harness.service.find_stems(take_id, 0) is None
    assert await harness.store.stems_of_job(receipt.job_id) == []


async def test_a_stem_cannot_be_split_again_and_a_remix_of_a_stem_records_its_lineage(harness):
    take_id = await _take(harness)
    receipt = await harness.service.submit(await harness.service.stems_request(take_id, 0, **MEMBER))
    await harness.wait_settled(2)
    with pytest.raises(UserInputError, match="already a stem"):
        await harness.service.stems_request(receipt.job_id, 1, **MEMBER)
    with pytest.raises(UserInputError, match="already a stem"):
        await harness.service.submit(JamRequest(**MEMBER, mode=Mode.STEMS, audio=AudioInput(from_job=receipt.job_id)))
    remix = await harness.service.submit(
        JamRequest(
            **MEMBER,
            mode=Mode.CONTINUATION,
            prompt="funky clavinet",
            model="debug",
            duration=1,
            audio=AudioInput(from_job=receipt.job_id, take=STEM_NAMES.index("bass")),
            parent_id=receipt.job_id,
        )
    )
    await harness.wait_settled(3)
    recipe = harness.service.recipe(await harness.service.job(remix.job_id))
    assert (recipe["audio_stem"], recipe["audio_stem_of"], recipe["parent_id"]) == ("bass", take_id, receipt.job_id)


async def test_an_attachment_is_split_too(harness):
    request = JamRequest(**MEMBER, mode=Mode.STEMS, audio=AudioInput(data=wav_bytes(1.5), filename="loop.wav"))
    receipt = await harness.service.submit(request)
    await harness.wait_settled(1)
    job = await harness.service.job(receipt.job_id)
    assert job.parent_id is None
    assert job.state == "delivered"
    assert [s.source_job_id for s in await harness.store.stems_of_job(job.id)] == [None] * 4


async def test_stems_that_do_not_fit_one_message_are_spread_over_several_never_refused(harness):
    take_id = await _take(harness, seconds=4.0)
    # 4 s at the lowest bitrate (64 kbps) is about 32 KB a stem: four cannot share 100 KB with the picture.
    request = await harness.service.stems_request(take_id, 0, **MEMBER, upload_limit_bytes=100_000)
    await harness.service.submit(request)
    await harness.wait_settled(2)
    delivered = harness.deliverer.delivered[-1]
    per_message: dict[int, int] = {}
    for take in delivered.takes:
        per_message[take.message] = per_message.get(take.message, 0) + take.path.stat().st_size
    assert len(per_message) > 1
    assert all(size <= 100_000 for size in per_message.values())


async def test_a_failed_separation_is_refunded(tmp_path):
    h = await build_harness(tmp_path, engine=FakeEngine())
    await h.service.start()
    try:
        take_id = await _take(h)
        used = (await h.service.quota(7, 5)).used
        h.engine.fail_next.append(EngineError("the separator broke", retriable=False))
        await h.service.submit(await h.service.stems_request(take_id, 0, **MEMBER))
        await h.wait_settled(2)
        assert (await h.service.quota(7, 5)).used == pytest.approx(used)
        assert await h.service.find_stems(take_id, 0) is None
    finally:
        await h.close()


async def test_a_bounce_of_some_stems_needs_every_takes_stems_then_mixes_only_those(harness):
    first = await _take(harness)
    second = await harness.service.submit(
        JamRequest(
            **MEMBER,
            mode=Mode.CONTINUATION,
            prompt="and then",
            duration=1,
            audio=AudioInput(from_job=first),
            parent_id=first,
        )
    )
    await harness.wait_settled(2)
    sessions = harness.service.sessions
    plan = await sessions.bounce_plan(second.job_id)
    assert [link.job.id for link in plan.links] == [first, second.job_id]
    with pytest.raises(StemsMissingError) as missing:
        await sessions.render_bounce(plan, stems=parse_stems("bass, drums"))
    assert missing.value.missing == ((first, 0), (second.job_id, 0))
    for job_id in (first, second.job_id):
        await harness.service.submit(await harness.service.stems_request(job_id, 0, **MEMBER))
    await harness.wait_settled(4)
    whole = await sessions.render_bounce(plan)
    rhythm = await sessions.render_bounce(plan, stems=parse_stems("bass, drums"))
    assert rhythm.duration_s == pytest.approx(whole.duration_s, abs=0.1)
    tags = await audio.read_recipe(rhythm.path, audio.AudioLimits())
    assert tags["bounce"]["stems"] == ["drums", "bass"]
    assert "stems" not in (await audio.read_recipe(whole.path, audio.AudioLimits()))["bounce"]
    # The mixes were temporary; a stem remix's chain skips the stems job to the take it was split from.
    assert not list(harness.service.paths.output_folder(second.job_id).glob("stem-mix-*"))
    stems_job = await harness.service.find_stems(second.job_id, 0)
    remix = await harness.service.submit(
        JamRequest(
            **MEMBER,
            mode=Mode.CONTINUATION,
            prompt="bass line goes on",
            duration=1,
            audio=AudioInput(from_job=stems_job.id, take=STEM_NAMES.index("bass")),
            parent_id=stems_job.id,
        )
    )
    await harness.wait_settled(5)
    chain = await sessions.bounce_plan(remix.job_id)
    assert [link.job.id for link in chain.links] == [first, second.job_id, remix.job_id]
    # In a jam's tree too, it grows from the take that was split, not from the stems job.
    tree = build_tree([await harness.service.job(j) for j in (first, second.job_id, remix.job_id)])
    assert {entry.job.id: entry.parent_id for entry in tree}[remix.job_id] == second.job_id


def test_stems_words_are_checked():
    assert parse_stems(None) == ()
    assert parse_stems(" vocals,drums ") == ("drums", "vocals")
    with pytest.raises(UserInputError, match="no stem called piano"):
        parse_stems("drums, piano")


async def test_a_stem_remix_waits_for_its_stems_and_survives_a_restart(tmp_path):
    h = await build_harness(tmp_path, engine=FakeEngine(hold=True))
    await h.service.start()
    take = await h.service.submit(JamRequest(**MEMBER, mode=Mode.TEXT, prompt="groove", duration=2))
    h.engine.release.set()
    await h.wait_settled(1)
    h.engine.release.clear()
    remix = JamRequest(**MEMBER, mode=Mode.CONTINUATION, prompt="bass goes on", model="debug", duration=1)
    answer = await h.service.submit_stem_remix(replace(remix, audio=AudioInput(from_job=take.job_id)), "bass")
    assert answer.waits_for_stems
    assert answer.receipt is not None
    assert answer.receipt.job_id == answer.stems_job_id
    await h.close()  # stopped while the stems are being made: the remix waits in the stems job
    h = await build_harness(tmp_path)
    await h.service.start()
    try:
        await h.wait_settled(3)
        (made,) = [j for j in await final_jobs(h.store) if j.parent_id == answer.stems_job_id]
        assert (made.state, made.mode, made.params["audio_stem"]) == ("delivered", "continuation", "bass")
        assert FOLLOW_UPS not in ((await h.store.get_job(answer.stems_job_id)).extra or {})
    finally:
        await h.close()


async def test_remixes_left_waiting_on_posted_stems_start_at_the_next_start(tmp_path):
    h = await build_harness(tmp_path)
    await h.service.start()
    take_id = await _take(h)
    stems = await h.service.submit(await h.service.stems_request(take_id, 0, **MEMBER))
    await h.wait_settled(2)
    # Stopped between posting the stems and starting the remix that waited for them.
    waiting = {**MEMBER, "mode": "melody", "prompt": "marimba", "model": "debug-melody", "duration": 1, "stem": "drums"}
    await h.store.update_job(stems.job_id, extra={FOLLOW_UPS: [waiting]})
    await h.close()
    h = await build_harness(tmp_path)
    await h.service.start()
    try:
        await h.wait_settled(3)
        (made,) = [j for j in await final_jobs(h.store) if j.parent_id == stems.job_id]
        assert (made.mode, made.params["audio_stem"], made.params["audio_stem_of"]) == ("melody", "drums", take_id)
    finally:
        await h.close()
