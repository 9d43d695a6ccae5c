from bot.engine.planning import plan_calls, split_in_halves
from bot.engine.types import GenerationRequest, Mode, SamplingParams


def _req(job_id, *, model="debug", mode=Mode.TEXT, duration=2.0, seed=None, sampling=None):
    return GenerationRequest(job_id, 0, model, mode, f"prompt {job_id}", duration, sampling or SamplingParams(), seed)


def _ids(calls):
    return [[r.job_id for r in call] for call in calls]


def test_requests_sharing_a_key_share_one_call():
    assert _ids(plan_calls([_req("a"), _req("b"), _req("c"), _req("d")], max_batch=8)) == [["a", "b", "c", "d"]]


def test_calls_are_split_at_the_batch_limit():
    assert _ids(plan_calls([_req(str(i)) for i in range(5)], max_batch=2)) == [["0", "1"], ["2", "3"], ["4"]]


def test_different_models_durations_and_sampling_do_not_mix():
    batch = [
        _req("a"),
        _req("b", model="debug-stereo"),
        _req("c", duration=3.0),
        _req("d", sampling=SamplingParams(temperature=0.5)),
        _req("e"),
    ]
    assert _ids(plan_calls(batch, max_batch=8)) == [["a", "e"], ["b"], ["c"], ["d"]]


def test_explicit_seeds_run_alone():
    batch = [_req("a", seed=1), _req("b", seed=1), _req("c")]
    assert _ids(plan_calls(batch, max_batch=8)) == [["a"], ["b"], ["c"]]


def test_halves_of_an_out_of_memory_call():
    rows = [_req(str(i)) for i in range(5)]
    assert _ids(split_in_halves(rows)) == [["0", "1", "2"], ["3", "4"]]
    assert split_in_halves(rows[:1]) == []
