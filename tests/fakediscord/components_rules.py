"""Per-component field rules (buttons, selects, text inputs) from components/reference.mdx.

Called by rules.validate_components (messages) and rules.validate_modal (modals); errors are
recorded in Discord's nested 50035 shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakediscord.rules import FormErrors

BUTTON, STRING_SELECT, TEXT_INPUT = 2, 3, 4
SELECT_TYPES = (3, 5, 6, 7, 8)
LINK, PREMIUM = 5, 6


def _too_long(errors: FormErrors, path: Sequence[str | int], value: Any, limit: int) -> None:
    if isinstance(value, str) and len(value) > limit:
        errors.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _range(errors: FormErrors, path: Sequence[str | int], value: Any, low: int, high: int) -> None:
    if value is not None and (not isinstance(value, int) or not low <= value <= high):
        errors.add(path, "NUMBER_TYPE_OUT_OF_RANGE", f"Must be between {low} and {high}.")


def validate_button(errors: FormErrors, path: list[str | int], button: dict[str, Any]) -> None:
    """Style 1-6 required; link buttons need url and no custom_id; premium need sku_id only; others custom_id.

    Args:
        errors: where to record.
        path: the component's JSON path.
        button: the button.
    """
    # docs: components/reference.mdx "Button Structure" and "Button Styles"
    style = button.get("style")
    if style is None:
        errors.add([*path, "style"], "BASE_TYPE_REQUIRED", "This field is required")
        return
    if style not in range(1, 7):
        errors.add([*path, "style"], "BASE_TYPE_CHOICES", "Value must be one of {1, 2, 3, 4, 5, 6}.")
        return
    _too_long(errors, [*path, "label"], button.get("label"), 80)
    _too_long(errors, [*path, "url"], button.get("url"), 512)
    forbidden: tuple[str, ...]
    if style == LINK:
        required, forbidden = "url", ("custom_id", "sku_id")
    elif style == PREMIUM:
        required, forbidden = "sku_id", ("custom_id", "label", "url", "emoji")
    else:
        required, forbidden = "custom_id", ("url", "sku_id")
    if not button.get(required):
        errors.add([*path, required], "BASE_TYPE_REQUIRED", "This field is required")
    for key in forbidden:
        if button.get(key) is not None:
            errors.add([*path, key], "BUTTON_FIELD_NOT_ALLOWED", f"A {key} cannot be set on this button style.")


def validate_select(errors: FormErrors, path: list[str | int], select: dict[str, Any]) -> None:
    """String selects need 1-25 options; min_values 0-25, max_values 1-25, min <= max <= options.

    Args:
        errors: where to record.
        path: the component's JSON path.
        select: the select menu.
    """
    # docs: components/reference.mdx "String Select Structure", "Select Option Structure"
    _too_long(errors, [*path, "placeholder"], select.get("placeholder"), 150)
    min_values, max_values = select.get("min_values"), select.get("max_values")
    _range(errors, [*path, "min_values"], min_values, 0, 25)
    _range(errors, [*path, "max_values"], max_values, 1, 25)
    low = min_values if isinstance(min_values, int) else 1
    high = max_values if isinstance(max_values, int) else 1
    if low > high:
        errors.add([*path, "min_values"], "SELECT_COMPONENT_MIN_VALUES_TOO_LARGE", "min_values exceeds max_values")
    if select.get("type") != STRING_SELECT:
        return
    options = select.get("options") or []
    if not 1 <= len(options) <= 25:
        errors.add([*path, "options"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 25 in length.")
    elif high > len(options):
        errors.add([*path, "max_values"], "SELECT_COMPONENT_MAX_VALUES_TOO_LARGE", "max_values exceeds the options")
    for index, option in enumerate(options):
        for key in ("label", "value"):
            if not option.get(key):
                errors.add([*path, "options", index, key], "BASE_TYPE_REQUIRED", "This field is required")
            _too_long(errors, [*path, "options", index, key], option.get(key), 100)
        _too_long(errors, [*path, "options", index, "description"], option.get("description"), 100)


def validate_text_input(
    errors: FormErrors, path: list[str | int], text_input: dict[str, Any], *, in_modal: bool
) -> None:
    """Text inputs exist only in modals: style 1/2, lengths 0-4000 / 1-4000, value 4000, placeholder 100.

    Args:
        errors: where to record.
        path: the component's JSON path.
        text_input: the text input.
        in_modal: whether it is in a modal (elsewhere it is refused).
    """
    # docs: components/reference.mdx "Text Input": "Text Inputs can only be used within modals".
    if not in_modal:
        errors.add([*path, "type"], "COMPONENT_TYPE_INVALID", "Text inputs can only be used in modals")
        return
    if text_input.get("style") not in (1, 2):
        errors.add([*path, "style"], "BASE_TYPE_CHOICES", "Value must be one of {1, 2}.")
    _range(errors, [*path, "min_length"], text_input.get("min_length"), 0, 4000)
    _range(errors, [*path, "max_length"], text_input.get("max_length"), 1, 4000)
    _too_long(errors, [*path, "value"], text_input.get("value"), 4000)
    _too_long(errors, [*path, "placeholder"], text_input.get("placeholder"), 100)


def validate_fields(errors: FormErrors, path: list[str | int], component: dict[str, Any], *, in_modal: bool) -> None:
    """The rules of one component by type.

    Args:
        errors: where to record.
        path: the component's JSON path.
        component: the component.
        in_modal: whether it is in a modal.
    """
    kind = component.get("type")
    if kind == BUTTON:
        validate_button(errors, path, component)
    elif kind in SELECT_TYPES:
        validate_select(errors, path, component)
    elif kind == TEXT_INPUT:
        validate_text_input(errors, path, component, in_modal=in_modal)
    # docs: components/reference.mdx "String Select": "Using disabled in a modal will result in an error."
    if in_modal and component.get("disabled"):
        errors.add([*path, "disabled"], "COMPONENT_DISABLED_IN_MODAL", "Modals cannot have disabled components")
