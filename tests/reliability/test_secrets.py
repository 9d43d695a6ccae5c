"""Item 6: the bot token and every interaction token appear in no log line and no file written.

The whole reliability suite runs with the root logger at DEBUG through jamgen's production
handler (``secrets_watch.debug_log_file``) and its bot processes at ``JAMGEN_LOG_LEVEL=DEBUG``;
discord.py then logs every gateway payload (interaction tokens inside) and every webhook URL
(tokens in the path). This module runs last: it adds a flow of its own that touches every kind of
token use (slash command, button, modal, followups, edits, a gateway RESUME, delivery after the
token expired, a restart), then looks for every token any fake issued in this session, in the log,
in the bot processes' logs, and in every file under pytest's temporary folder (data folders,
SQLite databases and their WAL files, MP3 tags, waveforms).
"""

from __future__ import annotations

import pytest

from tests.harness import form_values, submit, track_posts, wait_for_take, wait_state
from tests.reliability.secrets_watch import BOT_TOKEN, WATCH, token_hits

pytestmark = pytest.mark.slow


async def test_no_token_in_any_log_line_or_file(world, debug_log_file, tmp_path_factory):
    fake = world.fake
    # A take delivered into the interaction, its buttons, a modal, a gateway drop with RESUME.
    interaction, job_id = await submit(world, "secret-free take")
    await wait_state(world.store, job_id, "delivered", timeout=60)
    (post,) = track_posts(fake, job_id)
    recipe_id = next(b["custom_id"] for b in post.buttons if b["custom_id"].startswith("jamgen:recipe:"))
    recipe = await fake.click(post, recipe_id)
    await recipe.wait_for_message(lambda m: "Recipe" in m.content, timeout=10)
    remix_id = next(b["custom_id"] for b in post.buttons if b["custom_id"].startswith("jamgen:remix:"))
    remix = await fake.click(post, remix_id)
    await remix.wait_for_response()
    submitted = await fake.submit_modal(remix, form_values(remix.modal, prompt="1", mode="continue", duration="1"))
    await wait_for_take(submitted)
    await fake.drop_gateway(4000)
    await fake.wait_for(lambda: fake.gateway.resumed_count >= 1, timeout=10, what="RESUME")
    # A take whose interaction expired before it was ready: delivered into the channel instead.
    world.engine.open.clear()
    late, late_job = await submit(world, "late take", user=fake.add_member("carol"))
    fake.advance(16 * 60)
    world.engine.open.set()
    await wait_state(world.store, late_job, "delivered", timeout=60)
    # A restart on the same database.
    await world.restart()
    _, after_restart = await submit(world, "after restart", user=fake.add_member("dave"))
    await wait_state(world.store, after_restart, "delivered", timeout=60)

    tokens = WATCH.tokens()
    assert BOT_TOKEN in tokens
    interaction_tokens = tokens - {BOT_TOKEN}
    assert len(interaction_tokens) >= 6
    assert interaction.token in interaction_tokens
    assert late.token in interaction_tokens

    if WATCH.handler is not None:
        WATCH.handler.flush()
    searched = [debug_log_file, *WATCH.process_logs, tmp_path_factory.getbasetemp()]
    hits = token_hits(searched, tokens)
    shown = sorted({f"{path}: {'bot token' if token == BOT_TOKEN else 'interaction token'}" for path, token in hits})
    # Only where, never the tokens themselves: a failure report must not print them either.
    leaked = len(hits)
    assert leaked == 0, "tokens found in:\n" + "\n".join(shown[:20])

    # The log was worth searching: discord.py logged payloads and URLs that carried tokens, masked.
    log_text = debug_log_file.read_text(encoding="utf-8", errors="replace")
    assert " DEBUG " in log_text
    assert "INTERACTION_CREATE" in log_text
    assert "'token': '[redacted]'" in log_text
    assert "/webhooks/" in log_text
    assert "/[redacted]" in log_text
    files = sum(1 for p in tmp_path_factory.getbasetemp().rglob("*") if p.is_file())
    print(
        f"\nsecrets: {len(interaction_tokens)} interaction tokens and the bot token looked for in "
        f"{debug_log_file.stat().st_size // 1024} KiB of DEBUG log, {len(WATCH.process_logs)} bot process logs "
        f"and {files} files: none found"
    )


def test_the_search_finds_a_token_when_there_is_one(tmp_path):
    # Control: the search above can fail.
    leaked = tmp_path / "leak.bin"
    leaked.write_bytes(b"\x00garbage" + BOT_TOKEN.encode() + b"\xff")
    assert token_hits([tmp_path], {BOT_TOKEN, "aW50ZXJhY3Rpb246nothere"}) == [(leaked, BOT_TOKEN)]
