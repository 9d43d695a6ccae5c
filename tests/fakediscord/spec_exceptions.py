"""Where the conformance check departs from ``openapi.json``: the one list, each with its reason.

Discord publishes two references that disagree in places: the OpenAPI description
(``shared/discord-spec/openapi.json``) and the developer documentation (``shared/discord-spec/developers/``).
The docs describe what Discord does, so where they differ the docs win. Each :class:`SpecPatch` replaces
the node at a JSON pointer in the loaded spec before any validator is built, so violation reports keep
pointing at the same places in ``openapi.json``; a patch applies to requests, answers or both (requests
and answers are checked against two patched copies). Citations are paths under ``shared/discord-spec/``
with the docs' anchor (``#...``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Side = Literal["request", "answer"]


@dataclass(frozen=True)
class SpecPatch:
    """Replace (or add, or append to a list) the node at ``pointer`` in the spec with ``value``.

    Args:
        pointer: a JSON pointer into openapi.json, ``#/components/...``; its parent must exist.
        value: the new node.
        reason: why the spec is wrong here (what Discord does instead).
        docs: where the docs say so.
        sides: what it applies to: the bot's requests, the fake's answers, or both.
    """

    pointer: str
    value: Any
    reason: str
    docs: str
    sides: frozenset[Side] = frozenset({"request", "answer"})


# The JSON error object of a field error: its code is a string constant.
_FIELD_ERROR = {
    "type": "object",
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
    "required": ["code", "message"],
}

SPEC_PATCHES: tuple[SpecPatch, ...] = (
    SpecPatch(
        pointer="#/components/schemas/MessageCreateRequest/properties/content/maxLength",
        value=2000,
        reason="message content is at most 2000 characters for bots; the spec says 4000",
        docs="developers/resources/message.mdx#create-message-json/form-params (content: up to 2000 characters)",
    ),
    SpecPatch(
        pointer="#/components/schemas/MessageEditRequestPartial/properties/content/maxLength",
        value=2000,
        reason="an edit is held to the same 2000 characters as a new message; the spec says 4000",
        docs="developers/resources/message.mdx#edit-message-json/form-params (content: up to 2000 characters)",
    ),
    SpecPatch(
        pointer="#/components/schemas/InnerErrors/properties/_errors/items",
        value=_FIELD_ERROR,
        reason=(
            'field errors (the "_errors" lists of a 50035 Invalid Form Body) carry string codes such as '
            '"BASE_TYPE_REQUIRED"; the spec reuses the top-level Error object whose code is an integer'
        ),
        docs="developers/reference.mdx#error-messages (Array Error / Object Error / Request Error examples)",
    ),
    SpecPatch(
        pointer="#/components/schemas/RatelimitedResponse/allOf/0",
        value={
            "type": "object",
            "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
            "required": ["message"],
        },
        reason="a 429 body has message, retry_after and global; its code is optional (only some limits set one)",
        docs="developers/topics/rate-limits.mdx#exceeding-a-rate-limit-rate-limit-response-structure (code?)",
    ),
    SpecPatch(
        pointer="#/components/responses/ClientRatelimitedResponse/headers/Retry-After",
        value={"required": True, "schema": {"type": "integer", "minimum": 0}},
        reason="every 429 carries Retry-After (whole seconds since API v8); the spec lists no such header",
        docs="developers/topics/rate-limits.mdx#exceeding-a-rate-limit (rely on the Retry-After header; examples)",
    ),
    SpecPatch(
        pointer="#/components/responses/ClientRatelimitedResponse/headers/X-RateLimit-Scope",
        value={"required": True, "schema": {"type": "string", "enum": ["user", "global", "shared"]}},
        reason="every 429 says its scope (user, global or shared); the spec lists no such header",
        docs="developers/topics/rate-limits.mdx#header-format (X-RateLimit-Scope: returned only on HTTP 429)",
    ),
    SpecPatch(
        pointer="#/components/responses/ClientRatelimitedResponse/headers/X-RateLimit-Global",
        value={"schema": {"type": "boolean"}},
        reason="a 429 of the global limit says so in X-RateLimit-Global; the spec lists no such header",
        docs="developers/topics/rate-limits.mdx#header-format (X-RateLimit-Global: only on a global 429)",
    ),
    SpecPatch(
        pointer="#/components/schemas/InteractionCallbackResponse/properties/resource/oneOf/3",
        value={
            "type": "object",
            "properties": {"type": {"type": "integer", "enum": [5, 6, 8, 9]}},
            "required": ["type"],
            "not": {"required": ["message"]},
        },
        reason=(
            "?with_response=true answers a deferral, autocomplete result or modal with a resource that has"
            " only its type (message only for types 4 and 7); the spec allows only types 4, 7 and 12"
        ),
        docs=(
            "developers/interactions/receiving-and-responding.mdx#interaction-callback-interaction-callback-"
            "resource-object (message?: only present if type is CHANNEL_MESSAGE_WITH_SOURCE or UPDATE_MESSAGE)"
        ),
        sides=frozenset({"answer"}),
    ),
    SpecPatch(
        pointer="#/components/schemas/SnowflakeType",
        value={
            "anyOf": [
                {"type": "string", "pattern": "^(0|[1-9][0-9]*)$", "format": "snowflake"},
                {"type": "integer", "minimum": 0, "maximum": 18446744073709551615},
            ]
        },
        reason=(
            "requests may give ids as JSON integers: discord.py sends message_reference and allowed_mentions"
            " ids as ints, and new attachments' ids are the integer index of their files[n] part; Discord"
            " answers ids as strings only (the answers keep the spec's string snowflake)"
        ),
        docs=(
            "developers/reference.mdx#id-serialization (ids passed as integers are accepted and echoed as"
            " integers); developers/reference.mdx#uploading-files (payload_json example: attachments"
            ' [{"id": 0, ...}])'
        ),
        sides=frozenset({"request"}),
    ),
)


def apply_patches(spec: dict[str, Any], side: Side, patches: tuple[SpecPatch, ...] = SPEC_PATCHES) -> dict[str, Any]:
    """Apply the ``patches`` for ``side`` to ``spec`` in place and return it.

    Args:
        spec: the loaded openapi.json.
        side: which copy this is: the one requests are checked against, or answers.
        patches: what to replace.
    """
    for patch in patches:
        if side not in patch.sides:
            continue
        *parents, last = [unescape(part) for part in patch.pointer.removeprefix("#/").split("/")]
        node: Any = spec
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list) and int(last) == len(node):
            node.append(patch.value)
        elif isinstance(node, list):
            node[int(last)] = patch.value
        else:
            node[last] = patch.value
    return spec


def unescape(part: str) -> str:
    """A JSON pointer segment as the key it names (``~1`` is ``/``, ``~0`` is ``~``).

    Args:
        part: the escaped segment.
    """
    return part.replace("~1", "/").replace("~0", "~")
