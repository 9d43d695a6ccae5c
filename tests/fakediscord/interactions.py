"""Interaction response rules beyond message validation: followup parameters, flags on defer and edit.

docs: interactions/receiving-and-responding.mdx "Create Followup Message", "Interaction Callback Data
Structure" (flags on a deferral), "Interaction Callback Resource Object"; resources/message.mdx
"Edit Message" (IS_COMPONENTS_V2 can only be set).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tests.fakediscord.records import CHANNEL_MESSAGE, COMPONENTS_V2, EPHEMERAL, UPDATE_MESSAGE
from tests.fakediscord.rules import FormErrors

if TYPE_CHECKING:
    from tests.fakediscord.records import FakeMessage

# docs: "Interaction Callback Resource Object": message "Only present if type is either
# CHANNEL_MESSAGE_WITH_SOURCE or UPDATE_MESSAGE".
RESOURCE_MESSAGE_TYPES = (CHANNEL_MESSAGE, UPDATE_MESSAGE)


def refuse_followup_params(query: Mapping[str, str], payload: dict[str, Any]) -> None:
    """Refuse execute-webhook parameters followups do not support (400 50035).

    Args:
        query: the request's query.
        payload: the followup JSON.
    """
    # docs: "Create Followup Message": "The thread_id, avatar_url, and username parameters are not
    # supported when using this endpoint for interaction followups."
    errors = FormErrors()
    if "thread_id" in query:
        errors.add(
            ["thread_id"], "INTERACTION_FOLLOWUP_THREAD_ID_UNSUPPORTED", "thread_id is not supported for followups"
        )
    for key in ("avatar_url", "username"):
        if payload.get(key) is not None:
            errors.add([key], "INTERACTION_FOLLOWUP_FIELD_UNSUPPORTED", f"{key} is not supported for followups")
    errors.raise_if_any()


def check_defer_flags(data: dict[str, Any]) -> None:
    """A deferred channel message (type 5) accepts only the EPHEMERAL flag.

    Args:
        data: the callback's ``data``.
    """
    # docs: "Interaction Callback Data Structure" footnote: with DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE "the
    # only valid message flag you may use is EPHEMERAL".
    flags = int(data.get("flags") or 0)
    if flags & ~EPHEMERAL:
        errors = FormErrors(["data"])
        errors.add(["flags"], "INTERACTION_DEFERRED_FLAGS_INVALID", "Only the EPHEMERAL flag may be set when deferring")
        errors.raise_if_any()


def check_edit_flags(message: FakeMessage, payload: dict[str, Any], prefix: tuple[str, ...] = ()) -> None:
    """An edit cannot clear IS_COMPONENTS_V2, and a components-v2 message cannot get content or embeds.

    Args:
        message: the message being edited.
        payload: the edit JSON.
        prefix: JSON path of the payload (("data",) for callback type 7).
    """
    errors = FormErrors(prefix)
    had_v2 = bool(message.flags & COMPONENTS_V2)
    given = payload.get("flags")
    if had_v2 and given is not None and not int(given) & COMPONENTS_V2:
        # docs: resources/message.mdx "Edit Message": "the IS_COMPONENTS_V2 flag can only be set".
        errors.add(["flags"], "MESSAGE_CANNOT_REMOVE_COMPONENTS_V2_FLAG", "The IS_COMPONENTS_V2 flag cannot be removed")
    v2_after = had_v2 or (given is not None and bool(int(given) & COMPONENTS_V2))
    if v2_after:
        # When the flag is (or becomes) set, content must be null and embeds empty, in the edit or already.
        content = payload.get("content", None if had_v2 else message.content or None)
        embeds = payload.get("embeds", [] if had_v2 else message.embeds)
        if content or embeds:
            errors.add(
                ["content" if content else "embeds"],
                "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                "The 'content' and 'embeds' fields cannot be used when using MessageFlags.IS_COMPONENTS_V2",
            )
    errors.raise_if_any()


def as_validated(message: FakeMessage, payload: dict[str, Any]) -> dict[str, Any]:
    """The edit as validation must see it: a components-v2 message keeps its flag when ``flags`` is omitted.

    Args:
        message: the message being edited.
        payload: the edit JSON.
    """
    if payload.get("flags") is None and message.flags & COMPONENTS_V2:
        return {**payload, "flags": COMPONENTS_V2}
    return payload
