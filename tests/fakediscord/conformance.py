"""Hold the HTTP traffic between a bot and the fake Discord against Discord's OpenAPI description.

Every request the fake records (:class:`~tests.fakediscord.records.RequestRecord`: method, path, query,
raw body, and the answer's status, headers and body) is matched to a path template of
``shared/discord-spec/openapi.json`` and checked: path and query parameters and the request body (JSON,
or the ``payload_json`` part of a multipart body) against the operation's request schema; the answer's
status, listed headers and JSON body against the response the spec gives for that status. The spec is
patched first where Discord's docs say otherwise (:mod:`tests.fakediscord.spec_exceptions`, the one list).

Validators are built once per schema and cached for the session (:func:`default_checker`). The
``fake_discord`` fixture calls :func:`verify` at teardown; the counts add up in :data:`SESSION_TOTALS` for
the summary line printed by ``tests/conftest.py``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fakediscord.openapi import (
    SpecView,
    coerce,
    escape,
    field_of,
    leaves,
    media_type,
    parse_multipart,
    shorten,
)
from tests.fakediscord.records import RequestRecord
from tests.fakediscord.spec_exceptions import Side, apply_patches

SPEC_PATH = Path(__file__).resolve().parents[2].parent / "shared" / "discord-spec" / "openapi.json"
# Answers by which the fake refused the request's form on its own (Invalid Form Body, too large): Discord
# would refuse that body too, so a body the spec refuses is the expected cause, not a finding.
FORM_REFUSALS = frozenset({400, 413})
JSON_MEDIA = "application/json"
MULTIPART_MEDIA = "multipart/form-data"


@dataclass(frozen=True)
class Violation:
    """One place where a request or an answer breaks the (patched) spec."""

    side: Side
    method: str
    route: str
    status: int
    field: str
    schema_path: str
    message: str

    def __str__(self) -> str:
        side = "request" if self.side == "request" else f"answer {self.status}"
        return f"{self.method} {self.route} {side}: {self.field}: {self.message} [{self.schema_path}]"


@dataclass
class Report:
    """What a check covered: requests and answers validated, and what broke the spec."""

    requests: int = 0
    answers: int = 0
    violations: list[Violation] = field(default_factory=list)

    def add(self, other: Report) -> None:
        """Add another report's counts and violations to this one.

        Args:
            other: the report to add.
        """
        self.requests += other.requests
        self.answers += other.answers
        self.violations += other.violations

    def summary(self) -> str:
        """The one-line summary for the end of a test session."""
        return (
            f"discord conformance: {self.requests} requests and {self.answers} answers checked"
            f" against openapi.json, {len(self.violations)} violations"
        )


# Everything the fake_discord fixture checked in this session (printed by tests/conftest.py).
SESSION_TOTALS = Report()


class ConformanceError(AssertionError):
    """Exchanges broke the spec; the message lists every violation."""


class ConformanceChecker:
    """Checks recorded exchanges: requests against one patched copy of the spec, answers against another.

    Args:
        request_spec: openapi.json patched for requests.
        answer_spec: openapi.json patched for answers.
    """

    def __init__(self, request_spec: dict[str, Any], answer_spec: dict[str, Any]) -> None:
        self.views: dict[Side, SpecView] = {"request": SpecView(request_spec), "answer": SpecView(answer_spec)}
        # Path templates by segment count; literal segments win over parameters (…/messages/@original).
        self._templates: dict[int, list[tuple[tuple[bool, ...], tuple[str, ...], str]]] = {}
        for template in answer_spec["paths"]:
            segments = tuple(template.strip("/").split("/"))
            literal = tuple(not (part.startswith("{") and part.endswith("}")) for part in segments)
            self._templates.setdefault(len(segments), []).append((literal, segments, template))
        for candidates in self._templates.values():
            candidates.sort(reverse=True)

    def match(self, path: str) -> tuple[str, dict[str, str]] | None:
        """The spec's path template for a concrete path (no ``/api/v10``), with the path parameters.

        Args:
            path: e.g. ``/channels/1/messages``.
        """
        parts = path.strip("/").split("/")
        for literal, segments, template in self._templates.get(len(parts), []):
            pairs = list(zip(parts, segments, literal, strict=True))
            if all(part == segment for part, segment, fixed in pairs if fixed):
                return template, {segment[1:-1]: part for part, segment, fixed in pairs if not fixed}
        return None

    # ---- checking --------------------------------------------------------------------------------

    def check(self, records: Iterable[RequestRecord]) -> Report:
        """Check every exchange; CDN requests are not API calls and are left out.

        Args:
            records: the fake's request records.
        """
        report = Report()
        for record in records:
            if not record.path.startswith("/cdn/"):
                report.add(self.check_record(record))
        return report

    def check_record(self, record: RequestRecord) -> Report:
        """Check one request and, when there was one, its answer.

        Args:
            record: the exchange.
        """
        report = Report()
        method = record.method.lower()
        matched = self.match(record.path)
        item = self.views["answer"].spec["paths"][matched[0]] if matched else {}
        if matched is None or method not in item:
            if record.handled:  # the fake serves something Discord does not have
                report.requests += 1
                route, where = (matched[0], f"#/paths/{escape(matched[0])}") if matched else (record.path, "#/paths")
                missing = "no such operation in openapi.json"
                report.violations.append(
                    Violation("request", record.method, route, record.status, "(route)", where, missing)
                )
            return report
        template, path_params = matched
        op_pointer = f"#/paths/{escape(template)}/{method}"
        check = _Exchange(self, record, template, op_pointer)
        if record.status not in FORM_REFUSALS:
            report.requests += 1
            report.violations += check.request(path_params)
        if record.status:  # 0: the connection was reset, nothing was answered
            answered = check.answer()
            if answered is not None:
                report.answers += 1
                report.violations += answered
        return report


class _Exchange:
    """One record being checked against one operation."""

    def __init__(self, checker: ConformanceChecker, record: RequestRecord, template: str, op_pointer: str) -> None:
        self.checker = checker
        self.record = record
        self.template = template
        self.op_pointer = op_pointer
        self.requests = checker.views["request"]
        self.answers = checker.views["answer"]
        self.operation: dict[str, Any] = self.answers.node(op_pointer)

    def violation(self, side: Side, where: str, schema_path: str, message: str) -> Violation:
        record = self.record
        return Violation(side, record.method, self.template, record.status, where, schema_path, shorten(message))

    def validate(self, side: Side, instance: Any, pointer: str, where: str = "") -> Iterator[Violation]:
        """Violations of ``instance`` against the schema at ``pointer``, one per field; ``where`` prefixes it."""
        view = self.checker.views[side]
        seen: set[str] = set()
        for error in view.errors(pointer, instance):
            for leaf in leaves(error):
                spot = field_of(leaf)
                spot = where if spot == "(body)" and where else f"{where} {spot}".strip()
                if spot not in seen:  # an enum fails as "type" and as "oneOf" of consts: say it once
                    seen.add(spot)
                    yield self.violation(side, spot, view.schema_pointer(pointer, leaf), leaf.message)

    # ---- the request -----------------------------------------------------------------------------

    def parameters(self) -> dict[tuple[str, str], str]:
        """(in, name) → pointer of every parameter; the operation's override the path item's."""
        found: dict[tuple[str, str], str] = {}
        item_pointer = self.op_pointer.rsplit("/", 1)[0]
        for owner in (item_pointer, self.op_pointer):
            for index, _ in enumerate(self.requests.node(owner).get("parameters", [])):
                pointer, parameter = self.requests.deref(f"{owner}/parameters/{index}")
                found[(parameter["in"], parameter["name"])] = pointer
        return found

    def request(self, path_params: dict[str, str]) -> list[Violation]:
        violations: list[Violation] = []
        parameters = self.parameters()
        given = {("path", name): value for name, value in path_params.items()}
        given.update({("query", name): value for name, value in self.record.query.items()})
        for (where, name), value in given.items():
            pointer = parameters.get((where, name))
            if pointer is None:
                message = f"{name!r} is not a {where} parameter of this operation"
                spot = f"{where} {name}"
                violations.append(self.violation("request", spot, f"{self.op_pointer}/parameters", message))
                continue
            _, schema = self.requests.deref(f"{pointer}/schema")
            violations += self.validate("request", coerce(value, schema), f"{pointer}/schema", f"{where} {name}")
        for (where, name), pointer in parameters.items():
            if where == "query" and (where, name) not in given and self.requests.node(pointer).get("required"):
                spot = f"query {name}"
                violations.append(self.violation("request", spot, f"{pointer}/required", "required, missing"))
        return violations + self.request_body()

    def request_body(self) -> list[Violation]:
        record = self.record
        if "requestBody" not in self.operation:
            if record.request_body:
                return [self.violation("request", "(body)", self.op_pointer, "this operation takes no body")]
            return []
        body_pointer, body = self.requests.deref(f"{self.op_pointer}/requestBody")
        if not record.request_body:
            if body.get("required"):
                return [self.violation("request", "(body)", f"{body_pointer}/required", "a body is required")]
            return []
        media = media_type(record.request_content_type)
        if media not in body["content"]:
            message = f"Content-Type {media!r} is not one of {sorted(body['content'])}"
            return [self.violation("request", "(body)", f"{body_pointer}/content", message)]
        try:
            if media == MULTIPART_MEDIA:
                instance = parse_multipart(record.request_content_type, record.request_body)
            else:
                instance = json.loads(record.request_body)
        except ValueError as error:
            return [self.violation("request", "(body)", f"{body_pointer}/content", f"unreadable {media} body: {error}")]
        return list(self.validate("request", instance, f"{body_pointer}/content/{escape(media)}/schema"))

    # ---- the answer ------------------------------------------------------------------------------

    def answer(self) -> list[Violation] | None:
        """The answer's violations; None when the spec describes no answer of this kind (server errors)."""
        record = self.record
        responses = self.operation["responses"]
        key = next((k for k in (str(record.status), f"{record.status // 100}XX", "default") if k in responses), None)
        if key is None:
            if record.status >= 500:
                return None
            message = f"status {record.status} is not one the spec lists ({', '.join(responses)})"
            return [self.violation("answer", "(status)", f"{self.op_pointer}/responses", message)]
        pointer, response = self.answers.deref(f"{self.op_pointer}/responses/{key}")
        headers = {name.lower(): value for name, value in record.answer_headers.items()}
        violations: list[Violation] = []
        for name in response.get("headers", {}):
            header_pointer, header = self.answers.deref(f"{pointer}/headers/{escape(name)}")
            value = headers.get(name.lower())
            if value is None:
                if header.get("required"):
                    spot = f"header {name}"
                    violations.append(self.violation("answer", spot, f"{header_pointer}/required", "required, missing"))
                continue
            _, schema = self.answers.deref(f"{header_pointer}/schema")
            violations += self.validate("answer", coerce(value, schema), f"{header_pointer}/schema", f"header {name}")
        return violations + self.answer_body(pointer, response, headers.get("content-type", ""))

    def answer_body(self, pointer: str, response: dict[str, Any], content_type: str) -> list[Violation]:
        body = self.record.answer_body
        if "content" not in response:
            if body:
                return [self.violation("answer", "(body)", pointer, "the spec gives this answer no body")]
            return []
        media = media_type(content_type)
        if media not in response["content"]:
            message = f"Content-Type {content_type!r} is not one of {sorted(response['content'])}"
            return [self.violation("answer", "(body)", f"{pointer}/content", message)]
        if media != JSON_MEDIA:
            return []
        try:
            instance = json.loads(body)
        except ValueError as error:
            return [self.violation("answer", "(body)", f"{pointer}/content", f"unreadable JSON: {error}")]
        return list(self.validate("answer", instance, f"{pointer}/content/{escape(media)}/schema"))


@functools.cache
def default_checker() -> ConformanceChecker:
    """The session's checker over ``shared/discord-spec/openapi.json`` with the docs' corrections applied."""
    text = SPEC_PATH.read_text(encoding="utf-8")
    return ConformanceChecker(apply_patches(json.loads(text), "request"), apply_patches(json.loads(text), "answer"))


def spec_available() -> bool:
    """Whether openapi.json is where the tests expect it (``../shared/discord-spec/`` of the project root)."""
    return SPEC_PATH.is_file()


def format_violations(violations: list[Violation], limit: int = 40) -> str:
    """The violations one per line (at most ``limit``, then a count of the rest).

    Args:
        violations: what to list.
        limit: how many lines.
    """
    lines = [f"  {violation}" for violation in violations[:limit]]
    if len(violations) > limit:
        lines.append(f"  … and {len(violations) - limit} more")
    return "\n".join(lines)


def verify(records: Iterable[RequestRecord], totals: Report = SESSION_TOTALS) -> Report:
    """Check the exchanges, add them to ``totals``, and raise :class:`ConformanceError` on any violation.

    Args:
        records: the fake's request records.
        totals: where the counts add up (the session's by default).
    """
    report = default_checker().check(records)
    totals.add(report)
    if report.violations:
        count = len(report.violations)
        raise ConformanceError(
            f"{count} exchange(s) with the fake Discord break openapi.json"
            f" (exceptions: tests/fakediscord/spec_exceptions.py):\n{format_violations(report.violations)}"
        )
    return report
