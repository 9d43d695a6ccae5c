"""How a submitted batch becomes model generate calls (pure Python, shared by client, worker and tests)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.engine.types import GenerationRequest


def plan_calls(batch: Sequence[GenerationRequest], max_batch: int) -> list[list[GenerationRequest]]:
    """Group requests into generate calls.

    Requests with equal :meth:`GenerationRequest.batch_key` share a call (up to ``max_batch`` rows);
    a request with an explicit seed (key None) runs alone so that its seed alone decides its audio.
    Calls keep the order of their first request.

    Args:
        batch: requests in the order they were submitted.
        max_batch: most rows in one call (>= 1).
    """
    limit = max(1, max_batch)
    calls: list[list[GenerationRequest]] = []
    open_calls: dict[tuple[object, ...], list[GenerationRequest]] = {}
    for request in batch:
        key = request.batch_key()
        if key is None:
            calls.append([request])
            continue
        call = open_calls.get(key)
        if call is None or len(call) >= limit:
            call = []
            calls.append(call)
            open_calls[key] = call
        call.append(request)
    return calls


def split_in_halves(call: Sequence[GenerationRequest]) -> list[list[GenerationRequest]]:
    """The two halves an out-of-memory call is retried as (a call of one row cannot be split).

    Args:
        call: the rows of the call that ran out of memory.
    """
    if len(call) < 2:
        return []
    middle = (len(call) + 1) // 2
    return [list(call[:middle]), list(call[middle:])]
