"""The modal components of today's Discord: labels, file uploads and radio groups (components/reference.mdx).

Called by rules.validate_modal; errors are recorded in Discord's nested 50035 shape. What a member may
submit through them is checked by the fake's ``submit_modal`` (a file over the upload limit, a file type
the upload does not take, a missing required choice).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakediscord.rules import FormErrors

LABEL, FILE_UPLOAD, RADIO_GROUP, CHECKBOX_GROUP, CHECKBOX = 18, 19, 21, 22, 23
TEXT_INPUT = 4
# docs: "Label Child Components": a text input, the selects, a file upload, a radio group, checkboxes.
LABEL_CHILDREN = frozenset({TEXT_INPUT, 3, 5, 6, 7, 8, FILE_UPLOAD, RADIO_GROUP, CHECKBOX_GROUP, CHECKBOX})
# Components that exist only inside a Label ("must be placed inside a Label").
ONLY_IN_LABELS = frozenset({FILE_UPLOAD, RADIO_GROUP, CHECKBOX_GROUP, CHECKBOX})
# docs: reference.mdx "File Type Filtering": the broad kinds match these extensions.
FILE_KINDS = {
    "audio": (".mp3", ".wav", ".flac", ".ogg", ".opus", ".m4a", ".aac", ".aiff", ".aif", ".wma"),
    "video": (".mp4", ".mov", ".webm", ".mkv", ".avi"),
    "image": (".png", ".jpg", ".jpeg", ".gif", ".webp"),
}


def _length(errors: FormErrors, path: list[str | int], value: Any, low: int, high: int) -> None:
    if not isinstance(value, str) or not low <= len(value) <= high:
        errors.add(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")


def validate_top_level(errors: FormErrors, path: list[str | int], component: dict[str, Any]) -> None:
    """A modal's top-level component: a label (or a legacy row); file uploads and radio groups only in labels."""
    kind = component.get("type")
    if kind in ONLY_IN_LABELS:
        errors.add([*path, "type"], "COMPONENT_TYPE_INVALID", "This component must be placed inside a Label")
    for index, child in enumerate(component.get("components") or []):
        if child.get("type") in ONLY_IN_LABELS:
            errors.add([*path, "components", index, "type"], "COMPONENT_TYPE_INVALID", "Must be inside a Label")
    if kind == LABEL:
        validate_label(errors, path, component)


def validate_label(errors: FormErrors, path: list[str | int], label: dict[str, Any]) -> None:
    """Label text 1-45, description up to 100, exactly one child of the allowed kinds."""
    _length(errors, [*path, "label"], label.get("label"), 1, 45)
    if label.get("description") is not None:
        _length(errors, [*path, "description"], label["description"], 0, 100)
    child = label.get("component")
    if not isinstance(child, dict):
        errors.add([*path, "component"], "BASE_TYPE_REQUIRED", "This field is required")
        return
    if child.get("type") not in LABEL_CHILDREN:
        errors.add([*path, "component", "type"], "COMPONENT_TYPE_INVALID", "Invalid component type for a Label")
    if child.get("type") == TEXT_INPUT and child.get("label") is not None:
        # The text input's own label is deprecated in favour of the Label's.
        errors.add([*path, "component", "label"], "COMPONENT_LABEL_INVALID", "Use the Label's label instead")
    if child.get("type") == FILE_UPLOAD:
        validate_file_upload(errors, [*path, "component"], child)
    if child.get("type") == RADIO_GROUP:
        validate_radio_group(errors, [*path, "component"], child)


def validate_file_upload(errors: FormErrors, path: list[str | int], upload: dict[str, Any]) -> None:
    """custom_id 1-100; min_values 0-10 (at least 1 when required), max_values 1-10 and not below min; file_types."""
    _length(errors, [*path, "custom_id"], upload.get("custom_id"), 1, 100)
    required = upload.get("required", True)
    low, high = upload.get("min_values"), upload.get("max_values")
    if low is not None and (not isinstance(low, int) or not 0 <= low <= 10 or (required and low < 1)):
        errors.add([*path, "min_values"], "NUMBER_TYPE_OUT_OF_RANGE", "Must be between 1 and 10 when required.")
    if high is not None and (not isinstance(high, int) or not 1 <= high <= 10):
        errors.add([*path, "max_values"], "NUMBER_TYPE_OUT_OF_RANGE", "Must be between 1 and 10.")
    if isinstance(low, int) and isinstance(high, int) and low > high:
        errors.add([*path, "min_values"], "SELECT_COMPONENT_MIN_VALUES_GREATER_THAN_MAX", "Cannot exceed max_values")
    types = upload.get("file_types")
    if types is not None:
        if not isinstance(types, list) or len(types) > 10:
            errors.add([*path, "file_types"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        else:
            for index, kind in enumerate(types):
                if kind not in FILE_KINDS and not (isinstance(kind, str) and kind.startswith(".")):
                    errors.add([*path, "file_types", index], "FILE_TYPE_INVALID", "Not a file type")


def validate_radio_group(errors: FormErrors, path: list[str | int], group: dict[str, Any]) -> None:
    """custom_id 1-100; 2-10 options with value and label up to 100; at most one default."""
    _length(errors, [*path, "custom_id"], group.get("custom_id"), 1, 100)
    options = group.get("options") or []
    if not 2 <= len(options) <= 10:
        errors.add([*path, "options"], "BASE_TYPE_BAD_LENGTH", "Must be between 2 and 10 in length.")
    for index, option in enumerate(options):
        _length(errors, [*path, "options", index, "value"], option.get("value"), 1, 100)
        _length(errors, [*path, "options", index, "label"], option.get("label"), 1, 100)
    if sum(1 for option in options if option.get("default")) > 1:
        errors.add([*path, "options"], "RADIO_GROUP_DEFAULTS_INVALID", "Only one option can be the default")


def accepts_file(upload: dict[str, Any], filename: str) -> bool:
    """Whether the upload's ``file_types`` let this file through (by its extension only, as Discord does)."""
    types = upload.get("file_types")
    if not types:
        return True
    name = filename.lower()
    allowed = [ext for kind in types for ext in FILE_KINDS.get(kind, (kind.lower(),))]
    return name.endswith(tuple(allowed))
