"""The conformance check: it names route, field and schema path when a rule is broken, and passes what is right."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import discord
import pytest

from tests.fakediscord import FakeDiscord
from tests.fakediscord.conformance import (
    SPEC_PATH,
    ConformanceError,
    Report,
    Violation,
    default_checker,
    verify,
)
from tests.fakediscord.minibot import MiniBot
from tests.fakediscord.model import iso
from tests.fakediscord.records import FakeMessage, RequestRecord
from tests.fakediscord.runner import running_bot
from tests.fakediscord.spec_exceptions import SPEC_PATCHES, unescape

MESSAGES = "/channels/1234/messages"
MESSAGES_ROUTE = "/channels/{channel_id}/messages"
BOUNDARY = "conformance-boundary"


def exchange(
    method: str,
    path: str,
    *,
    body: Any = None,
    status: int = 200,
    answer: Any = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    raw_body: bytes | None = None,
    content_type: str = "application/json",
) -> RequestRecord:
    """A recorded exchange as the fake's middleware writes it."""
    request_body = raw_body if raw_body is not None else (b"" if body is None else json.dumps(body).encode())
    answer_headers = {"Content-Type": "application/json"} if answer is not None else {}
    return RequestRecord(
        method=method,
        path=path,
        query=query or {},
        status=status,
        at=0.0,
        request_content_type=content_type if request_body else "",
        request_body=request_body,
        answer_headers={**answer_headers, **(headers or {})},
        answer_body=b"" if answer is None else json.dumps(answer).encode(),
    )


def message_answer(fake: FakeDiscord, content: str = "hi") -> dict[str, Any]:
    """A message object built by the fake's own payload builder."""
    message = FakeMessage(
        id=fake.ids.next(),
        channel_id=fake.channel.id,
        guild_id=fake.guild.id,
        author=fake.bot_user,
        source="channel",
        content=content,
        components=[{"type": 1, "components": [{"type": 2, "style": 1, "label": "Go", "custom_id": "go"}]}],
        timestamp=iso(fake.clock.utcnow()),
    )
    return fake.message_payload(message)


def multipart(payload: dict[str, Any], files: dict[str, bytes]) -> bytes:
    """A multipart/form-data body as discord.py sends it: payload_json then files[n]."""
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="payload_json"\r\n\r\n{json.dumps(payload)}\r\n']
    parts += [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="a.mp3"\r\n\r\n' for name in files
    ]
    body = parts[0].encode()
    for header, data in zip(parts[1:], files.values(), strict=True):
        body += header.encode() + data + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def only(violations: list[Violation]) -> Violation:
    assert len(violations) == 1, "\n".join(map(str, violations))
    return violations[0]


@pytest.fixture(scope="module")
def fake() -> FakeDiscord:
    """A fake that is never started: its payload builders and ids are enough here."""
    return FakeDiscord()


def test_the_spec_is_where_the_tests_expect_it():
    # Not a skip: without ../shared/discord-spec/ the end-to-end suites check nothing.
    assert SPEC_PATH.is_file(), f"{SPEC_PATH} is missing: the conformance check needs Discord's openapi.json"


def test_a_correct_exchange_passes(fake: FakeDiscord):
    record = exchange("POST", MESSAGES, body={"content": "hi", "tts": False}, answer=message_answer(fake))
    report = default_checker().check([record])
    assert (report.requests, report.answers, report.violations) == (1, 1, [])


def test_a_wrong_answer_body_names_route_field_and_schema_path(fake: FakeDiscord):
    answer = message_answer(fake)
    answer["author"]["id"] = 1234  # snowflakes are strings in answers
    del answer["timestamp"]
    report = default_checker().check([exchange("POST", MESSAGES, body={"content": "hi"}, answer=answer)])
    by_field = {violation.field: violation for violation in report.violations}
    assert set(by_field) == {"author.id", "timestamp"}
    assert by_field["author.id"].schema_path == "#/components/schemas/SnowflakeType/type"
    assert by_field["timestamp"].schema_path == "#/components/schemas/MessageResponse/required"
    assert all(v.side == "answer" and v.route == MESSAGES_ROUTE and v.method == "POST" for v in report.violations)
    assert str(by_field["author.id"]).startswith("POST /channels/{channel_id}/messages answer 200: author.id: ")


def test_a_wrong_component_in_an_answer_is_reported_inside_its_branch(fake: FakeDiscord):
    answer = message_answer(fake)
    answer["components"][0]["components"][0]["style"] = "primary"
    violation = only(default_checker().check([exchange("GET", f"{MESSAGES}/1", answer=answer)]).violations)
    assert violation.field == "components[0].components[0].style"
    assert violation.schema_path == "#/components/schemas/ButtonStyleTypes/type"


def test_a_wrong_request_body_names_route_field_and_schema_path(fake: FakeDiscord):
    record = exchange("POST", MESSAGES, body={"content": 5}, answer=message_answer(fake))
    violation = only(default_checker().check([record]).violations)
    assert (violation.side, violation.method, violation.route) == ("request", "POST", MESSAGES_ROUTE)
    assert violation.field == "content"
    assert violation.schema_path == "#/components/schemas/MessageCreateRequest/properties/content/type"


def test_the_docs_limit_of_2000_characters_is_the_one_held(fake: FakeDiscord):
    ok = exchange("POST", MESSAGES, body={"content": "x" * 2000}, answer=message_answer(fake))
    too_long = exchange("POST", MESSAGES, body={"content": "x" * 2001}, answer=message_answer(fake))
    assert default_checker().check([ok]).violations == []
    violation = only(default_checker().check([too_long]).violations)
    assert violation.schema_path == "#/components/schemas/MessageCreateRequest/properties/content/maxLength"


def test_a_refused_form_is_not_held_against_the_request():
    # The fake answered 400 itself (as Discord would): the bad body is why, not a finding.
    refused = {"code": 50035, "message": "Invalid Form Body", "errors": {"content": {"_errors": [
        {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}}}  # fmt: skip
    report = default_checker().check([exchange("POST", MESSAGES, body={"content": 5}, status=400, answer=refused)])
    assert (report.requests, report.answers, report.violations) == (0, 1, [])


def test_the_payload_json_of_a_multipart_body_is_checked(fake: FakeDiscord):
    payload = {"content": "jam", "tts": "yes", "attachments": [{"id": 0, "filename": "a.mp3"}]}
    record = exchange(
        "POST",
        MESSAGES,
        raw_body=multipart(payload, {"files[0]": b"ID3..."}),
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
        answer=message_answer(fake),
    )
    violation = only(default_checker().check([record]).violations)
    assert (violation.side, violation.field) == ("request", "tts")
    assert violation.schema_path == "#/components/schemas/MessageCreateRequest/properties/tts/type"


def test_a_missing_required_header_is_a_violation():
    limited = {"message": "You are being rate limited.", "retry_after": 0.5, "global": False}
    record = exchange("POST", MESSAGES, body={"content": "hi"}, status=429, answer=limited)
    violations = default_checker().check([record]).violations
    by_field = {violation.field: violation for violation in violations}
    assert set(by_field) == {"header Retry-After", "header X-RateLimit-Scope"}
    retry_after = by_field["header Retry-After"]
    assert (retry_after.side, retry_after.status, retry_after.route) == ("answer", 429, MESSAGES_ROUTE)
    assert retry_after.schema_path == "#/components/responses/ClientRatelimitedResponse/headers/Retry-After/required"

    headers = {"Retry-After": "1", "X-RateLimit-Scope": "user"}
    answered = exchange("POST", MESSAGES, body={"content": "hi"}, status=429, answer=limited, headers=headers)
    assert default_checker().check([answered]).violations == []


def test_a_listed_header_of_the_wrong_type_is_a_violation(fake: FakeDiscord):
    record = exchange("GET", f"{MESSAGES}/1", answer=message_answer(fake), headers={"X-RateLimit-Limit": "five"})
    violation = only(default_checker().check([record]).violations)
    assert violation.field == "header X-RateLimit-Limit"
    assert violation.schema_path == "#/components/headers/X-RateLimit-Limit/schema/type"


def test_unknown_query_parameters_unlisted_statuses_and_stray_bodies_are_violations():
    checker = default_checker()
    query = only(checker.check([exchange("POST", "/channels/1/typing", status=204, query={"when": "now"})]).violations)
    assert (query.field, query.schema_path) == (
        "query when",
        "#/paths/~1channels~1{channel_id}~1typing/post/parameters",
    )
    unlisted = only(checker.check([exchange("POST", "/channels/1/typing", status=201, answer={})]).violations)
    assert unlisted.field == "(status)"
    stray = only(checker.check([exchange("DELETE", f"{MESSAGES}/1", status=204, answer={"ok": True})]).violations)
    assert (stray.side, stray.field) == ("answer", "(body)")


def test_literal_segments_win_over_parameters_and_server_errors_are_not_described():
    checker = default_checker()
    assert checker.match("/webhooks/1/tok/messages/@original") == (
        "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
        {"webhook_id": "1", "webhook_token": "tok"},
    )
    assert checker.match("/channels/1/messages/pins")[0] == "/channels/{channel_id}/messages/pins"  # type: ignore[index]
    server_error = exchange("GET", f"{MESSAGES}/1", status=503, answer={"message": "503: Service Unavailable"})
    assert checker.check([server_error]) == Report(requests=1, answers=0, violations=[])


def test_verify_fails_listing_every_violation_and_counts_into_the_totals(fake: FakeDiscord):
    totals = Report()
    answer = message_answer(fake)
    answer["pinned"] = "no"
    with pytest.raises(ConformanceError) as raised:
        verify([exchange("GET", f"{MESSAGES}/1", answer=answer)], totals=totals)
    assert "GET /channels/{channel_id}/messages/{message_id} answer 200: pinned:" in str(raised.value)
    assert "#/components/schemas/MessageResponse/properties/pinned/type" in str(raised.value)
    assert (totals.requests, totals.answers, len(totals.violations)) == (1, 1, 1)


def test_every_exception_patches_a_place_in_the_spec_and_cites_the_docs():
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    docs_root = SPEC_PATH.parent
    for patch in SPEC_PATCHES:
        *parents, _ = patch.pointer.removeprefix("#/").split("/")
        node: Any = spec
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[unescape(part)]
        assert isinstance(node, dict | list), patch.pointer
        assert patch.reason
        assert patch.sides
        cited = Path(patch.docs.split("#", 1)[0].split(" ", 1)[0])
        assert (docs_root / cited).is_file(), f"{patch.pointer} cites {cited}, which is not under {docs_root}"


async def test_an_end_to_end_round_trip_is_checked_clean():
    bot = MiniBot()

    @bot.tree.command(name="jam", description="Send, edit and follow up")
    async def jam(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("working", view=discord.ui.View().add_item(
            discord.ui.Button(label="Again", custom_id="jam:again")))  # fmt: skip
        await interaction.edit_original_response(content="done")
        await interaction.followup.send("file", file=discord.File(io.BytesIO(b"ID3-bytes"), "jam.mp3"))
        assert interaction.channel is not None
        await interaction.channel.send("in the channel")  # type: ignore[union-attr]

    async with FakeDiscord() as fake, running_bot(fake, bot):
        interaction = await fake.slash("jam")
        await interaction.wait_until(lambda _: len(fake.bot_messages()) >= 3, timeout=10)
    report = default_checker().check(fake.requests)
    assert report.violations == []
    # Login and sync, the callback, the edit, the followup and the channel message at least.
    assert report.requests >= 6
    assert report.answers >= 6
