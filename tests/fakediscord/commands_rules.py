"""Application command registration rules (bulk overwrite and upsert), as Discord refuses them.

docs: interactions/application-commands.mdx "Application Command Naming", "Application Command
Structure", "Application Command Option Structure" (required before optional, unique names,
autocomplete not with choices), "Registering a Command" (100 chat-input, 15 user and 15 message
commands per scope), "Slash Commands" (8000 characters per command), "User Commands" / "Message
Commands" (no description), "Contexts" (integration_types 0/1, contexts 0/1/2).
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import Any

from tests.fakediscord.rules import DiscordError, FormErrors

CHAT_INPUT, USER, MESSAGE = 1, 2, 3
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
CHOICE_TYPES = (3, 4, 10)
# docs: "Registering a Command": 100 global CHAT_INPUT, 15 USER, 15 MESSAGE (the same per guild).
MAX_COMMANDS = {CHAT_INPUT: 100, USER: 15, MESSAGE: 15}
MAX_COMMAND_CHARACTERS = 8000
MAX_COMMANDS_REACHED = 30032


def _name_char_ok(char: str) -> bool:
    # ^[-_'\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$ : letters, numbers, - _ ' (and Devanagari/Thai marks).
    category = unicodedata.category(char)
    return char in "-_'" or category[0] in "LN" or (category[0] == "M" and _indic_or_thai(char))


def _indic_or_thai(char: str) -> bool:
    return 0x0900 <= ord(char) <= 0x097F or 0x0E00 <= ord(char) <= 0x0E7F


def valid_chat_input_name(name: Any) -> bool:
    """Whether a CHAT_INPUT command or option name matches Discord's regex and lowercase rule.

    Args:
        name: the name.
    """
    # docs: "Application Command Naming": the regex, and "If there is a lowercase variant of any letters
    # used, you must use those."
    return (
        isinstance(name, str)
        and 1 <= len(name) <= 32
        and all(_name_char_ok(char) for char in name)
        and all(char.lower() == char for char in name if len(char.lower()) == 1)
    )


def _localized_max(item: dict[str, Any], key: str) -> int:
    # docs: "Slash Commands": only the longest localization of each field (default included) counts.
    values = [str(item.get(key) or "")] + [str(v or "") for v in (item.get(f"{key}_localizations") or {}).values()]
    return max(len(v) for v in values)


def command_size(command: dict[str, Any]) -> int:
    """Characters counted toward the 8000 limit: names, descriptions, choice names and values, nested.

    Args:
        command: a command or an option.
    """
    total = _localized_max(command, "name") + _localized_max(command, "description")
    for choice in command.get("choices") or []:
        total += _localized_max(choice, "name") + len(str(choice.get("value", "")))
    return total + sum(command_size(option) for option in command.get("options") or [])


def _validate_options(errors: FormErrors, path: list[str | int], options: list[dict[str, Any]], depth: int) -> None:
    if len(options) > 25:
        errors.add([*path, "options"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    names = Counter(option.get("name") for option in options)
    seen_optional = False
    for index, option in enumerate(options):
        option_path: list[str | int] = [*path, "options", index]
        kind = option.get("type")
        if not valid_chat_input_name(option.get("name")):
            errors.add([*option_path, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        elif names[option.get("name")] > 1:
            # docs: "Application Command Option Structure": name must be unique within an array of options.
            errors.add(
                [*option_path, "name"], "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS", "Option name already exists"
            )
        if not 1 <= len(option.get("description") or "") <= 100:
            errors.add([*option_path, "description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        if kind in (SUB_COMMAND, SUB_COMMAND_GROUP):
            nested = option.get("options") or []
            if kind == SUB_COMMAND_GROUP and (depth > 0 or any(o.get("type") != SUB_COMMAND for o in nested)):
                errors.add([*option_path, "type"], "APPLICATION_COMMAND_OPTION_TYPE_INVALID", "Invalid option type")
            if kind == SUB_COMMAND and any(o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in nested):
                errors.add([*option_path, "options"], "APPLICATION_COMMAND_OPTION_TYPE_INVALID", "Invalid option type")
            _validate_options(errors, option_path, nested, depth + 1)
            continue
        # docs: "Required options must be listed before optional options".
        if option.get("required"):
            if seen_optional:
                errors.add(
                    [*option_path, "required"],
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            seen_optional = True
        choices = option.get("choices") or []
        if choices and kind not in CHOICE_TYPES:
            errors.add(
                [*option_path, "choices"], "BASE_TYPE_INVALID", "choices are only for STRING, INTEGER and NUMBER"
            )
        if len(choices) > 25:
            errors.add([*option_path, "choices"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        for choice_index, choice in enumerate(choices):
            choice_path = [*option_path, "choices", choice_index]
            if not 1 <= len(str(choice.get("name") or "")) <= 100:
                errors.add([*choice_path, "name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
            if isinstance(choice.get("value"), str) and len(choice["value"]) > 100:
                errors.add([*choice_path, "value"], "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        # docs: "autocomplete may not be set to true if choices are present".
        if option.get("autocomplete") and choices:
            errors.add(
                [*option_path, "autocomplete"],
                "APPLICATION_COMMAND_AUTOCOMPLETE_INVALID",
                "Autocomplete cannot be enabled on options that have choices",
            )
        for key, low in (("min_length", 0), ("max_length", 1)):
            value = option.get(key)
            if value is not None and not low <= int(value) <= 6000:
                errors.add([*option_path, key], "NUMBER_TYPE_MAX", f"Must be between {low} and 6000.")


def validate_contexts(errors: FormErrors, path: list[str | int], command: dict[str, Any]) -> None:
    """Refuse ``integration_types`` / ``contexts`` values Discord does not know (400 50035).

    docs: interactions/application-commands.mdx "Application Command Structure": lists of application
    integration types (0, 1) and interaction context types (0, 1, 2).
    """
    # Both may be null (discord.py sends null when unset): the app's default installs, every context.
    for key, allowed in (("integration_types", (0, 1)), ("contexts", (0, 1, 2))):
        if command.get(key) is None:
            continue
        values = command[key]
        if not isinstance(values, list):
            errors.add([*path, key], "BASE_TYPE_LIST", "Must be a list.")
            continue
        for index, value in enumerate(values):
            if isinstance(value, bool) or value not in allowed:
                errors.add([*path, key, index], "BASE_TYPE_CHOICES", f"Value must be one of {set(allowed)}.")


def validate_command(errors: FormErrors, path: list[str | int], command: dict[str, Any]) -> None:
    """Record what is wrong with one command.

    Args:
        errors: where to record.
        path: its JSON path in the request.
        command: the command JSON.
    """
    kind = command.get("type", CHAT_INPUT)
    name = command.get("name")
    validate_contexts(errors, path, command)
    if kind == CHAT_INPUT:
        if not valid_chat_input_name(name):
            errors.add([*path, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        if not 1 <= len(command.get("description") or "") <= 100:
            errors.add([*path, "description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        _validate_options(errors, path, command.get("options") or [], 0)
        if command_size(command) > MAX_COMMAND_CHARACTERS:
            errors.add(
                [*path], "APPLICATION_COMMAND_TOO_LARGE", f"Command exceeds maximum size ({MAX_COMMAND_CHARACTERS})"
            )
        return
    # docs: "Application Command Naming": USER and MESSAGE names may be mixed case with spaces, 1-32.
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        errors.add([*path, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
    # docs: "User Commands" / "Message Commands": description is not allowed when creating them.
    if command.get("description"):
        errors.add([*path, "description"], "APPLICATION_COMMAND_DESCRIPTION_INVALID", "Description must be empty")
    if command.get("options"):
        errors.add(
            [*path, "options"], "APPLICATION_COMMAND_OPTIONS_INVALID", "Context menu commands cannot have options"
        )


def validate_command_list(commands: Sequence[dict[str, Any]]) -> None:
    """Refuse a bulk overwrite: each command's rules, unique names per type, at most 100/15/15 (400 50035).

    Args:
        commands: the PUT body.
    """
    errors = FormErrors()
    per_type = Counter(command.get("type", CHAT_INPUT) for command in commands)
    names = Counter((command.get("type", CHAT_INPUT), command.get("name")) for command in commands)
    for index, command in enumerate(commands):
        validate_command(errors, [index], command)
        if names[(command.get("type", CHAT_INPUT), command.get("name"))] > 1:
            errors.add(
                [index, "name"], "APPLICATION_COMMANDS_DUPLICATE_NAME", "Application command names must be unique"
            )
    for kind, count in per_type.items():
        if count > MAX_COMMANDS.get(kind, 100):
            errors.add(
                [], "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_COMMANDS.get(kind, 100)} or fewer commands of type {kind}"
            )
    errors.raise_if_any()


def check_room_for(registry: dict[int, dict[str, Any]], command: dict[str, Any], replacing: bool) -> None:
    """Refuse a new command (upsert) past the per-type maximum (400 30032).

    Args:
        registry: the scope's current commands.
        command: the new command.
        replacing: an existing command of that name and type is updated instead.
    """
    kind = command.get("type", CHAT_INPUT)
    count = sum(1 for existing in registry.values() if existing.get("type", CHAT_INPUT) == kind)
    if not replacing and count >= MAX_COMMANDS.get(kind, 100):
        raise DiscordError(400, MAX_COMMANDS_REACHED, "Maximum number of application commands reached")
