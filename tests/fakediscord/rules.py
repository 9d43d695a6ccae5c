"""Discord's request rules the fake enforces, and Discord's error shapes.

Form errors use Discord's nested shape::

    {"code": 50035, "message": "Invalid Form Body",
     "errors": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH",
                                         "message": "Must be 2000 or fewer in length."}]}}}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.fakediscord.components_rules import validate_fields
from tests.fakediscord.layout_rules import (
    check_file_references,
    check_legacy_fields,
    refuse_v2_types,
    uploaded_names,
    validate_layout,
)
from tests.fakediscord.modal_rules import validate_top_level
from tests.fakediscord.model import FakeLimits
from tests.fakediscord.records import COMPONENTS_V2, walk_components

# JSON error codes (https://discord.com/developers/docs/topics/opcodes-and-status-codes#json).
UNKNOWN_CHANNEL = 10003
UNKNOWN_MESSAGE = 10008
UNKNOWN_WEBHOOK = 10015
UNKNOWN_APPLICATION_COMMAND = 10063
UNKNOWN_INTERACTION = 10062
CANNOT_EDIT_OTHERS_MESSAGE = 50005
EMPTY_MESSAGE = 50006
INVALID_WEBHOOK_TOKEN = 50027
INVALID_FORM_BODY = 50035
INTERACTION_ALREADY_ACKNOWLEDGED = 40060
REQUEST_ENTITY_TOO_LARGE = 40005
THREAD_LOCKED = 50083
THREAD_ALREADY_EXISTS = 160004

BUTTON = 2
ACTION_ROW = 1
SELECT_TYPES = (3, 5, 6, 7, 8)
TEXT_INPUT = 4
LINK_STYLE = 5
PREMIUM_STYLE = 6


class DiscordError(Exception):
    """An error response the fake sends: status, JSON code and message (and form errors).

    Args:
        status: HTTP status.
        code: Discord's JSON error code.
        message: Discord's message.
        errors: the nested form-error tree for 50035.
    """

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        """The JSON body Discord sends."""
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


class FormErrors:
    """Collects form errors at JSON paths and builds Discord's nested tree."""

    def __init__(self, prefix: Sequence[str | int] = ()) -> None:
        self._prefix = tuple(prefix)
        self.tree: dict[str, Any] = {}

    def add(self, path: Sequence[str | int], code: str, message: str) -> None:
        """Record one error.

        Args:
            path: keys and list indexes below the prefix.
            code: Discord's error code string, e.g. BASE_TYPE_MAX_LENGTH.
            message: its message.
        """
        node = self.tree
        for key in (*self._prefix, *path):
            node = node.setdefault(str(key), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def raise_if_any(self) -> None:
        """Raise 400/50035 when something was recorded."""
        if self.tree:
            raise DiscordError(400, INVALID_FORM_BODY, "Invalid Form Body", self.tree)


def _max_length(errors: FormErrors, path: Sequence[str | int], value: Any, limit: int) -> None:
    if value is not None and len(value) > limit:
        errors.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _embed_text(text: Any) -> str:
    # docs: resources/message.mdx "Embed Limits": leading and trailing whitespace is not counted.
    return text.strip() if isinstance(text, str) else ""


def _validate_embeds(errors: FormErrors, embeds: list[dict[str, Any]], limits: FakeLimits) -> None:
    if len(embeds) > limits.max_embeds:
        errors.add(["embeds"], "BASE_TYPE_MAX_LENGTH", f"Must be {limits.max_embeds} or fewer in length.")
    total = 0
    for index, embed in enumerate(embeds):
        base = ["embeds", index]
        _max_length(errors, [*base, "title"], embed.get("title"), 256)
        _max_length(errors, [*base, "description"], embed.get("description"), 4096)
        fields = embed.get("fields") or []
        if len(fields) > 25:
            errors.add([*base, "fields"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        for field_index, embed_field in enumerate(fields):
            for key, limit in (("name", 256), ("value", 1024)):
                path = [*base, "fields", field_index, key]
                # docs: resources/message.mdx "Embed Field Structure": name and value are required strings.
                if not _embed_text(embed_field.get(key)):
                    errors.add(path, "BASE_TYPE_REQUIRED", "This field is required")
                _max_length(errors, path, embed_field.get(key), limit)
        _max_length(errors, [*base, "footer", "text"], (embed.get("footer") or {}).get("text"), 2048)
        _max_length(errors, [*base, "author", "name"], (embed.get("author") or {}).get("name"), 256)
        total += sum(
            len(_embed_text(text))
            for text in [
                embed.get("title"),
                embed.get("description"),
                (embed.get("footer") or {}).get("text"),
                (embed.get("author") or {}).get("name"),
                *[f.get("name") for f in fields],
                *[f.get("value") for f in fields],
            ]
        )
    # docs: resources/message.mdx "Embed Limits": 6000 characters summed across all embeds of a message.
    if total > 6000:
        errors.add(["embeds"], "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")


def _validate_interactive(
    errors: FormErrors, path: list[str | int], component: dict[str, Any], limits: FakeLimits, *, in_modal: bool = False
) -> None:
    kind = component.get("type")
    custom_id = component.get("custom_id")
    # Buttons: custom_id depends on the style (components_rules.validate_button).
    if (kind == TEXT_INPUT or kind in SELECT_TYPES) and not custom_id:
        errors.add([*path, "custom_id"], "BASE_TYPE_REQUIRED", "This field is required")
    if custom_id is not None:
        _max_length(errors, [*path, "custom_id"], custom_id, limits.max_custom_id)
    validate_fields(errors, path, component, in_modal=in_modal)


def validate_components(errors: FormErrors, components: list[dict[str, Any]], flags: int, limits: FakeLimits) -> None:
    """Action-row layout (legacy components) and custom_id rules (all components).

    Args:
        errors: where to record problems.
        components: top-level components of the message.
        flags: the message flags (IS_COMPONENTS_V2 switches the layout rules off).
        limits: the fake's limits.
    """
    if not flags & COMPONENTS_V2:
        if len(components) > limits.max_action_rows:
            errors.add(
                ["components"], "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {limits.max_action_rows} in length."
            )
        for row_index, row in enumerate(components):
            row_path: list[str | int] = ["components", row_index]
            if row.get("type") != ACTION_ROW:
                errors.add([*row_path, "type"], "UNION_TYPE_CHOICES", 'Value of field "type" must be one of (1,).')
                continue
            children = row.get("components") or []
            if not children or len(children) > limits.max_row_components:
                errors.add(
                    [*row_path, "components"],
                    "BASE_TYPE_BAD_LENGTH",
                    f"Must be between 1 and {limits.max_row_components} in length.",
                )
            if any(child.get("type") in SELECT_TYPES for child in children) and len(children) > 1:
                errors.add(
                    [*row_path, "components"],
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                    "The specified component exceeds the maximum width",
                )
            for child_index, child in enumerate(children):
                _validate_interactive(errors, [*row_path, "components", child_index], child, limits)
        refuse_v2_types(errors, components)
    else:
        validate_layout(errors, components)
        for index, component in enumerate(walk_components(components)):
            _validate_interactive(errors, ["components", index], component, limits)
    seen: set[str] = set()
    for component in walk_components(components):
        custom_id = component.get("custom_id")
        if custom_id is None:
            continue
        if custom_id in seen:
            errors.add(["components"], "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated")
        seen.add(custom_id)


def validate_message(
    payload: dict[str, Any],
    limits: FakeLimits,
    *,
    prefix: Sequence[str | int] = (),
    creating: bool,
    file_count: int = 0,
    kept_attachments: int = 0,
) -> None:
    """Raise Discord's error if a message create/edit payload breaks a rule.

    Args:
        payload: the message JSON (``data`` of a callback, or the body of a POST/PATCH).
        limits: the fake's limits.
        prefix: JSON path of the payload in the request, e.g. ("data",) for callbacks.
        creating: whether this creates a message (empty messages are refused then).
        file_count: files uploaded with the request.
        kept_attachments: attachments the message keeps (edits).
    """
    errors = FormErrors(prefix)
    content = payload.get("content")
    if content is not None and not isinstance(content, str):
        errors.add(["content"], "STRING_TYPE_CONVERT", "Could not interpret value as string.")
        content = str(content)
    _max_length(errors, ["content"], content, limits.max_content)
    flags = int(payload.get("flags") or 0)
    _validate_embeds(errors, payload.get("embeds") or [], limits)
    validate_components(errors, payload.get("components") or [], flags, limits)
    if flags & COMPONENTS_V2 and (content or payload.get("embeds")):
        errors.add(
            ["content"],
            "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
            "The 'content' and 'embeds' fields cannot be used when using MessageFlags.IS_COMPONENTS_V2",
        )
    if flags & COMPONENTS_V2:
        check_legacy_fields(errors, payload)
        if creating:
            check_file_references(errors, payload.get("components") or [], uploaded_names(payload))
    errors.raise_if_any()
    if creating and not (
        content
        or payload.get("embeds")
        or payload.get("components")
        or payload.get("sticker_ids")
        or payload.get("poll")
        or file_count
        or kept_attachments
    ):
        raise DiscordError(400, EMPTY_MESSAGE, "Cannot send an empty message")


def validate_modal(data: dict[str, Any], limits: FakeLimits) -> None:
    """Raise Discord's error for a bad modal (callback type 9).

    Args:
        data: the callback's ``data``.
        limits: the fake's limits.
    """
    errors = FormErrors(["data"])
    if not data.get("title"):
        errors.add(["title"], "BASE_TYPE_REQUIRED", "This field is required")
    _max_length(errors, ["title"], data.get("title"), 45)
    if not data.get("custom_id"):
        errors.add(["custom_id"], "BASE_TYPE_REQUIRED", "This field is required")
    _max_length(errors, ["custom_id"], data.get("custom_id"), limits.max_custom_id)
    components = data.get("components") or []
    if not 1 <= len(components) <= 5:
        errors.add(["components"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
    for index, component in enumerate(components):
        validate_top_level(errors, ["components", index], component)
    for index, component in enumerate(walk_components(components)):
        if component.get("type") == TEXT_INPUT:
            _max_length(errors, ["components", index, "label"], component.get("label"), 45)
        if component.get("type") in (BUTTON, TEXT_INPUT, *SELECT_TYPES):
            _validate_interactive(errors, ["components", index], component, limits, in_modal=True)
    errors.raise_if_any()


def validate_choices(data: dict[str, Any]) -> None:
    """Raise Discord's error for bad autocomplete choices (callback type 8).

    Args:
        data: the callback's ``data``.
    """
    errors = FormErrors(["data"])
    choices = data.get("choices") or []
    if len(choices) > 25:
        errors.add(["choices"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    for index, choice in enumerate(choices):
        name = choice.get("name") or ""
        if not 1 <= len(name) <= 100:
            errors.add(["choices", index, "name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        if isinstance(choice.get("value"), str):
            _max_length(errors, ["choices", index, "value"], choice["value"], 100)
    errors.raise_if_any()
