"""Components V2 layout rules (IS_COMPONENTS_V2 messages), from components/reference.mdx.

Called by rules.validate_components (layout, limits, ids) and rules.validate_message (the fields the
flag forbids, file components that name an uploaded attachment); errors use Discord's nested 50035 shape.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from tests.fakediscord.records import walk_components

if TYPE_CHECKING:
    from tests.fakediscord.rules import FormErrors

ACTION_ROW, BUTTON, SECTION, TEXT_DISPLAY, THUMBNAIL = 1, 2, 9, 10, 11
MEDIA_GALLERY, FILE, SEPARATOR, CONTAINER = 12, 13, 14, 17
SELECT_TYPES = (3, 5, 6, 7, 8)
# docs: components/reference.mdx "Component Types": the layout and content types that need the flag.
V2_ONLY_TYPES = (SECTION, TEXT_DISPLAY, THUMBNAIL, MEDIA_GALLERY, FILE, SEPARATOR, CONTAINER)
# docs: components/reference.mdx: Action Row, Section, Text Display, Media Gallery, File, Separator and
# Container are "top-level" components (openapi MessageCreateRequest.components lists the same seven).
TOP_LEVEL = (ACTION_ROW, SECTION, TEXT_DISPLAY, MEDIA_GALLERY, FILE, SEPARATOR, CONTAINER)
# docs: components/reference.mdx "Container Child Components".
CONTAINER_CHILDREN = (ACTION_ROW, TEXT_DISPLAY, SECTION, MEDIA_GALLERY, SEPARATOR, FILE)
# docs: components/reference.mdx "Section Accessory Components".
SECTION_ACCESSORIES = (BUTTON, THUMBNAIL)
# docs: components/reference.mdx intro and change-log.mdx "Raised Component Limits": 40 in all, nested included.
MAX_COMPONENTS = 40
# openapi.json TextDisplayComponentForMessageRequest: content 1-4000; the whole message's text displays
# share the same 4000 (the limit discord.py's LayoutView.content_length documents).
MAX_TEXT = 4000
ATTACHMENT_SCHEME = "attachment://"


def _choices(errors: FormErrors, path: Sequence[str | int], allowed: Sequence[int]) -> None:
    listed = ", ".join(str(kind) for kind in allowed)
    errors.add([*path, "type"], "UNION_TYPE_CHOICES", f'Value of field "type" must be one of ({listed}).')


def _bad_length(errors: FormErrors, path: Sequence[str | int], low: int, high: int) -> None:
    errors.add(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")


def refuse_v2_types(errors: FormErrors, components: list[dict[str, Any]]) -> None:
    """Without the flag, no component of the V2 types may appear anywhere (they need IS_COMPONENTS_V2).

    Args:
        errors: where to record.
        components: the message's top-level components.
    """
    # docs: components/reference.mdx Section/Text Display/…/Container: "To use this component in messages
    # you must send the message flag 1 << 15 (IS_COMPONENTS_V2)".
    for path, component in _with_paths(components, ["components"]):
        if component.get("type") in V2_ONLY_TYPES:
            errors.add(
                [*path, "type"],
                "COMPONENT_TYPE_REQUIRES_COMPONENTS_V2",
                "This component type requires the IS_COMPONENTS_V2 message flag",
            )


def _with_paths(
    components: list[dict[str, Any]], base: list[str | int]
) -> Iterator[tuple[list[str | int], dict[str, Any]]]:
    """Every component with its JSON path, depth first."""
    for index, component in enumerate(components):
        path = [*base, index]
        yield path, component
        yield from _with_paths(component.get("components") or [], [*path, "components"])
        if isinstance(component.get("accessory"), dict):
            yield [*path, "accessory"], component["accessory"]


def _row(errors: FormErrors, path: list[str | int], row: dict[str, Any]) -> None:
    children = row.get("components") or []
    # docs: components/reference.mdx "Action Row": up to 5 buttons or a single select.
    if not 1 <= len(children) <= 5:
        _bad_length(errors, [*path, "components"], 1, 5)
    for index, child in enumerate(children):
        if child.get("type") != BUTTON and child.get("type") not in SELECT_TYPES:
            _choices(errors, [*path, "components", index], (BUTTON, *SELECT_TYPES))
    if any(child.get("type") in SELECT_TYPES for child in children) and len(children) > 1:
        errors.add(
            [*path, "components"],
            "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
            "The specified component exceeds the maximum width",
        )


def _section(errors: FormErrors, path: list[str | int], section: dict[str, Any]) -> None:
    children = section.get("components") or []
    # docs: components/reference.mdx "Section Structure": one to three text displays and a required accessory.
    if not 1 <= len(children) <= 3:
        _bad_length(errors, [*path, "components"], 1, 3)
    for index, child in enumerate(children):
        if child.get("type") != TEXT_DISPLAY:
            _choices(errors, [*path, "components", index], (TEXT_DISPLAY,))
    accessory = section.get("accessory")
    if not isinstance(accessory, dict):
        errors.add([*path, "accessory"], "BASE_TYPE_REQUIRED", "This field is required")
    elif accessory.get("type") not in SECTION_ACCESSORIES:
        _choices(errors, [*path, "accessory"], SECTION_ACCESSORIES)


def _media(errors: FormErrors, path: list[str | int], media: Any) -> None:
    # docs: components/reference.mdx "Unfurled Media Item": url is the one field developers set.
    if not isinstance(media, dict) or not media.get("url"):
        errors.add([*path, "url"], "BASE_TYPE_REQUIRED", "This field is required")


def _gallery(errors: FormErrors, path: list[str | int], gallery: dict[str, Any]) -> None:
    items = gallery.get("items") or []
    # docs: components/reference.mdx "Media Gallery Structure": 1 to 10 items; alt text max 1024.
    if not 1 <= len(items) <= 10:
        _bad_length(errors, [*path, "items"], 1, 10)
    for index, item in enumerate(items):
        _media(errors, [*path, "items", index, "media"], item.get("media"))
        description = item.get("description")
        if isinstance(description, str) and len(description) > 1024:
            errors.add(
                [*path, "items", index, "description"], "BASE_TYPE_MAX_LENGTH", "Must be 1024 or fewer in length."
            )


def _file(errors: FormErrors, path: list[str | int], component: dict[str, Any]) -> None:
    media = component.get("file")
    _media(errors, [*path, "file"], media)
    url = str((media or {}).get("url") or "")
    # docs: components/reference.mdx "File": it "only supports using the attachment:// protocol".
    if url and not url.startswith(ATTACHMENT_SCHEME):
        errors.add(
            [*path, "file", "url"],
            "UNFURLED_MEDIA_ITEM_ATTACHMENT_REQUIRED",
            "File components only support attachment:// references",
        )


def _container(errors: FormErrors, path: list[str | int], container: dict[str, Any]) -> None:
    children = container.get("components") or []
    # openapi.json ContainerComponentForMessageRequest: components required, at least one.
    if not children:
        errors.add([*path, "components"], "BASE_TYPE_REQUIRED", "This field is required")
    colour = container.get("accent_color")
    # docs: components/reference.mdx "Container Structure": accent_color is RGB 0x000000-0xFFFFFF.
    if colour is not None and (not isinstance(colour, int) or not 0 <= colour <= 0xFFFFFF):
        errors.add([*path, "accent_color"], "NUMBER_TYPE_OUT_OF_RANGE", "Must be between 0 and 16777215.")
    for index, child in enumerate(children):
        child_path: list[str | int] = [*path, "components", index]
        if child.get("type") not in CONTAINER_CHILDREN:
            _choices(errors, child_path, CONTAINER_CHILDREN)
            continue
        _one(errors, child_path, child)


def _one(errors: FormErrors, path: list[str | int], component: dict[str, Any]) -> None:
    kind = component.get("type")
    if kind == ACTION_ROW:
        _row(errors, path, component)
    elif kind == SECTION:
        _section(errors, path, component)
    elif kind == MEDIA_GALLERY:
        _gallery(errors, path, component)
    elif kind == FILE:
        _file(errors, path, component)
    elif kind == CONTAINER:
        _container(errors, path, component)
    elif kind == SEPARATOR and component.get("spacing") not in (None, 1, 2):
        # docs: components/reference.mdx "Separator Structure": spacing 1 (small) or 2 (large).
        errors.add([*path, "spacing"], "BASE_TYPE_CHOICES", "Value must be one of {1, 2}.")


def validate_layout(errors: FormErrors, components: list[dict[str, Any]]) -> None:
    """The layout of an IS_COMPONENTS_V2 message: where each type may go, the 40-component and 4000-character
    limits, and unique ids.

    Args:
        errors: where to record.
        components: the message's top-level components.
    """
    for index, component in enumerate(components):
        path: list[str | int] = ["components", index]
        if component.get("type") not in TOP_LEVEL:
            _choices(errors, path, TOP_LEVEL)
            continue
        _one(errors, path, component)
    every = list(walk_components(components))
    if len(every) > MAX_COMPONENTS:
        errors.add(["components"], "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_COMPONENTS} or fewer in length.")
    texts = [component.get("content") for component in every if component.get("type") == TEXT_DISPLAY]
    for position, text in enumerate(texts):
        if not isinstance(text, str) or not text:
            # openapi.json TextDisplayComponentForMessageRequest: content is required, at least 1 character.
            errors.add(
                ["components", "text_display", position, "content"], "BASE_TYPE_REQUIRED", "This field is required"
            )
    if sum(len(text) for text in texts if isinstance(text, str)) > MAX_TEXT:
        errors.add(
            ["components"], "COMPONENT_TEXT_TOO_LONG", f"Text displays must be {MAX_TEXT} or fewer characters in total."
        )
    # docs: components/reference.mdx "Anatomy of a Component": "The id must be unique within the message"
    # (0 counts as empty).
    ids = [component.get("id") for component in every if component.get("id")]
    if len(ids) != len(set(ids)):
        errors.add(["components"], "COMPONENT_ID_DUPLICATED", "Component ids must be unique within the message")


def check_legacy_fields(errors: FormErrors, payload: dict[str, Any]) -> None:
    """With the flag, sticker_ids, poll and shared_client_theme are refused (content/embeds: rules.py).

    Args:
        errors: where to record.
        payload: the message JSON.
    """
    # docs: resources/message.mdx "Create Message": "When the flag IS_COMPONENTS_V2 is set, the message can only
    # contain components. Providing content, embeds, sticker_ids, poll, or shared_client_theme will fail".
    for key in ("sticker_ids", "poll", "shared_client_theme"):
        if payload.get(key):
            errors.add(
                [key],
                "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                f"The '{key}' field cannot be used when using MessageFlags.IS_COMPONENTS_V2",
            )


def uploaded_names(payload: dict[str, Any], file_names: Collection[str] = ()) -> set[str]:
    """The file names a request uploads: its ``attachments`` entries' filenames and its multipart file names.

    Args:
        payload: the message JSON.
        file_names: the names of the ``files[n]`` parts.
    """
    listed = {str(entry["filename"]) for entry in payload.get("attachments") or [] if entry.get("filename")}
    return listed | set(file_names)


def check_file_references(errors: FormErrors, components: list[dict[str, Any]], names: Collection[str]) -> None:
    """Each file component names an attachment uploaded with the same request.

    Args:
        errors: where to record.
        components: the message's top-level components.
        names: the uploaded files' names.
    """
    # docs: components/reference.mdx "File": it displays "an uploaded file as an attachment to the message"
    # referenced as attachment://<filename>; Discord answers 50035 when no such upload exists.
    for index, component in enumerate(walk_components(components)):
        if component.get("type") != FILE:
            continue
        url = str((component.get("file") or {}).get("url") or "")
        if url.startswith(ATTACHMENT_SCHEME) and url[len(ATTACHMENT_SCHEME) :] not in names:
            errors.add(
                ["components", index, "file", "url"],
                "UNFURLED_MEDIA_ITEM_ATTACHMENT_NOT_FOUND",
                f"No attachment named {url[len(ATTACHMENT_SCHEME) :]!r} was uploaded with this message",
            )
