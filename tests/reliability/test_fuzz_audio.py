"""Fuzzing the audio room's probe-and-decode wrapper (see fuzz_audio.py for the property).

In the normal suite a small budget of examples runs. ``JAMGEN_FUZZ_SECONDS=60`` (``make fuzz``)
keeps generating examples for that many seconds, in rounds of Hypothesis runs, and prints what
the inputs did. A crash is shrunk by Hypothesis and reported with its bytes; keep it below as an
``@example`` so the test fails until it is fixed.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, example, given, settings

from tests.reliability.fuzz_audio import FuzzOutcome, attachment_bytes, fuzz_one, make_seed_files

SMALL_BUDGET_EXAMPLES = 40
ROUND_EXAMPLES = 50
FUZZ_SECONDS = float(os.environ.get("JAMGEN_FUZZ_SECONDS") or 0)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    return list(make_seed_files(tmp_path_factory.mktemp("fuzz-seeds")).values())


def _property(seeds: list[bytes], max_examples: int, seen: Counter[str]) -> Callable[[], None]:
    @settings(
        max_examples=max_examples,
        deadline=None,  # each example runs real ffprobe/ffmpeg; fuzz_one enforces its own time bound
        database=None,  # failures are kept as explicit @example lines, not in a local folder
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        print_blob=True,
    )
    @given(data=attachment_bytes(seeds))
    # Known inputs that once broke the property would be pinned here, e.g. @example(data=bytes.fromhex("...")).
    @example(data=b"")
    @example(data=b"RIFF\xff\xff\xff\x7fWAVEfmt ")
    def check(data: bytes) -> None:
        outcome: FuzzOutcome = fuzz_one(data)
        seen["accepted" if outcome.accepted else str(outcome.error)] += 1

    return check


def test_random_and_mutated_files_are_decoded_or_refused_cleanly(seeds: list[bytes]) -> None:
    seen: Counter[str] = Counter()
    _property(seeds, SMALL_BUDGET_EXAMPLES, seen)()
    assert sum(seen.values()) >= SMALL_BUDGET_EXAMPLES
    # Both sides of the property ran: some inputs got through, some were refused.
    assert seen["accepted"] > 0
    assert set(seen) - {"accepted"}


def test_every_seed_file_is_accepted(seeds: list[bytes]) -> None:
    # Mutations only mean something if the files they start from are good.
    outcomes = [fuzz_one(seed) for seed in seeds]
    assert [o.error for o in outcomes] == [None] * len(seeds)


@pytest.mark.skipif(not FUZZ_SECONDS, reason="set JAMGEN_FUZZ_SECONDS to fuzz for that long (make fuzz)")
def test_fuzz_for_the_time_asked(seeds: list[bytes], capsys: pytest.CaptureFixture[str]) -> None:
    seen: Counter[str] = Counter()
    rounds = 0
    deadline = time.monotonic() + FUZZ_SECONDS
    # Rounds of fresh Hypothesis runs (each with a new random seed) until the time is up; a failure
    # stops at once with the shrunk input.
    while time.monotonic() < deadline:
        _property(seeds, ROUND_EXAMPLES, seen)()
        rounds += 1
    with capsys.disabled():
        total = sum(seen.values())
        print(f"\nfuzzed {total} inputs in {rounds} rounds for {FUZZ_SECONDS:g} s: {dict(seen.most_common())}")
    assert seen["accepted"] > 0
