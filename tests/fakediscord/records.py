"""What the fake saw: messages, interactions and their callbacks/followups/edits, requests and 4xx errors.

Tests read these records; the server writes them. Times come in two flavours: ``*_at`` fields
on :class:`FakeMessage`, :class:`RequestRecord` and :class:`ErrorRecord` are ``time.monotonic()``
values, and the ``at`` fields of an interaction's callbacks/calls are seconds since its
INTERACTION_CREATE frame was written to the bot's socket.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from tests.fakediscord.model import FakeAttachment, FakeMember, FakeUser

if TYPE_CHECKING:
    from tests.fakediscord.server import FakeDiscord

EPHEMERAL = 1 << 6
LOADING = 1 << 7
HAS_THREAD = 1 << 5
COMPONENTS_V2 = 1 << 15

# Interaction types.
PING = 1
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
AUTOCOMPLETE = 4
MODAL_SUBMIT = 5

# Interaction callback types.
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
AUTOCOMPLETE_RESULT = 8
MODAL = 9

MessageSource = Literal["channel", "interaction", "followup", "user", "test"]


def walk_components(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every component, depth first: rows, containers, sections and their accessories, labels.

    Args:
        components: a message's or modal's top-level components.
    """
    for component in components:
        yield component
        yield from walk_components(component.get("components") or [])
        for key in ("accessory", "component"):
            inner = component.get(key)
            if isinstance(inner, dict):
                yield from walk_components([inner])


def _answered_media(media: dict[str, Any], by_name: dict[str, FakeAttachment]) -> FakeAttachment | None:
    """Fill an unfurled media item as Discord answers it (docs: components/reference.mdx "Unfurled Media
    Item": only ``url`` is set by the sender, the API provides the rest); the attachment it names, if any."""
    url = str(media.get("url") or "")
    attachment = by_name.get(url.removeprefix("attachment://")) if url.startswith("attachment://") else None
    media["proxy_url"] = attachment.url if attachment is not None else url
    media.setdefault("id", str(attachment.id if attachment is not None else 0))
    if attachment is not None:
        media["attachment_id"] = str(attachment.id)
        media["content_type"] = attachment.content_type
    return attachment


def _answer_v2_fields(component: dict[str, Any], by_name: dict[str, FakeAttachment]) -> None:
    if component.get("type") == 12:  # media gallery: items with media, description and spoiler
        for item in component.get("items") or []:
            _answered_media(item.setdefault("media", {}), by_name)
            item.setdefault("description", None)
            item.setdefault("spoiler", False)
    elif component.get("type") == 11:  # thumbnail
        _answered_media(component.setdefault("media", {}), by_name)
        component.setdefault("description", None)
        component.setdefault("spoiler", False)
    elif component.get("type") == 17:  # container: the defaults of components/reference.mdx "Container Structure"
        component.setdefault("accent_color", None)
        component.setdefault("spoiler", False)
    elif component.get("type") == 14:  # separator: divider defaults to true, spacing to 1 (small)
        component.setdefault("divider", True)
        component.setdefault("spacing", 1)
    elif component.get("type") == 13:  # file: "name" and "size" are "provided by the API as part of the response"
        attachment = _answered_media(component.setdefault("file", {}), by_name)
        component["name"] = attachment.filename if attachment is not None else None
        component["size"] = attachment.size if attachment is not None else None
        component.setdefault("spoiler", False)


def answered_components(
    components: list[dict[str, Any]], attachments: Sequence[FakeAttachment] = ()
) -> list[dict[str, Any]]:
    """A copy of a message's components as Discord answers them.

    Discord numbers the components left without an id (or with id 0) sequentially, depth first,
    skipping the ids the sender chose (docs: components/reference.mdx, "id"), and answers a unicode
    emoji as a partial emoji without ``id`` where the sender may have put ``"id": null``. Media items
    and file components get the fields the API provides, from the message's ``attachments``.

    Args:
        components: the components as sent.
        attachments: the message's attachments (what ``attachment://`` references name).
    """
    answered = copy.deepcopy(components)
    by_name = {attachment.filename: attachment for attachment in attachments}
    for component in walk_components(answered):
        _answer_v2_fields(component, by_name)
    taken = {component["id"] for component in walk_components(answered) if component.get("id")}
    next_id = 1
    for component in walk_components(answered):
        emojis = [component.get("emoji")] + [option.get("emoji") for option in component.get("options") or []]
        for emoji in emojis:
            if isinstance(emoji, dict) and emoji.get("id") is None:
                emoji.pop("id", None)
        if component.get("id"):
            continue
        while next_id in taken:
            next_id += 1
        component["id"] = next_id
        taken.add(next_id)
    return answered


def answered_embeds(embeds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of a message's embeds as Discord answers them: type "rich", every field with ``inline``.

    Discord sets the type of embeds a bot sends to "rich" whatever it says (docs: resources/message.mdx,
    create message limitations) and answers ``inline`` false where the field left it out.

    Args:
        embeds: the embeds as sent.
    """
    answered = copy.deepcopy(embeds)
    for embed in answered:
        embed["type"] = "rich"
        for embed_field in embed.get("fields") or []:
            embed_field.setdefault("inline", False)
    return answered


@dataclass(frozen=True)
class MessageVersion:
    """A message as it was after its creation or one edit."""

    content: str
    embeds: list[dict[str, Any]]
    components: list[dict[str, Any]]
    attachment_names: list[str]
    flags: int
    at: float


@dataclass(eq=False)
class FakeMessage:
    """A message in the fake: sent by the bot (channel, interaction response, followup) or posted by a test."""

    id: int
    channel_id: int
    guild_id: int | None
    author: FakeUser
    source: MessageSource
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[FakeAttachment] = field(default_factory=list)
    flags: int = 0
    type: int = 0
    tts: bool = False
    mention_ids: list[int] = field(default_factory=list)
    mention_role_ids: list[int] = field(default_factory=list)
    mention_everyone: bool = False
    pinned: bool = False
    pinned_at: str | None = None
    reference: dict[str, Any] | None = None
    interaction_id: int | None = None
    webhook_id: int | None = None
    thread_id: int | None = None
    timestamp: str = ""
    edited_timestamp: str | None = None
    created_at: float = field(default_factory=time.monotonic)
    deleted: bool = False
    reactions: dict[str, list[int]] = field(default_factory=dict)
    versions: list[MessageVersion] = field(default_factory=list)
    # The raw JSON the bot sent for this message (last create/edit), for assertions on exotic fields.
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def ephemeral(self) -> bool:
        """Whether only the invoking user sees it."""
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """Whether it is still the "thinking…" placeholder of a deferred response."""
        return bool(self.flags & LOADING)

    @property
    def edited(self) -> bool:
        """Whether it was edited after creation."""
        return self.edited_timestamp is not None

    def snapshot(self) -> None:
        """Append the current state to :attr:`versions` (the server calls this on create and edit)."""
        self.versions.append(
            MessageVersion(
                content=self.content,
                embeds=list(self.embeds),
                components=list(self.components),
                attachment_names=[attachment.filename for attachment in self.attachments],
                flags=self.flags,
                at=time.monotonic(),
            )
        )

    def all_components(self) -> list[dict[str, Any]]:
        """Every component, nested ones included."""
        return list(walk_components(self.components))

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """Every button (type 2) as the bot sent it."""
        return [component for component in self.all_components() if component.get("type") == 2]

    @property
    def custom_ids(self) -> list[str]:
        """custom_id of every interactive component."""
        return [component["custom_id"] for component in self.all_components() if "custom_id" in component]

    def component(self, custom_id: str) -> dict[str, Any]:
        """The component with this custom_id.

        Args:
            custom_id: its custom_id.
        """
        for component in self.all_components():
            if component.get("custom_id") == custom_id:
                return component
        raise KeyError(f"message {self.id} has no component {custom_id!r}; it has {self.custom_ids}")

    def button(self, label: str | None = None, *, custom_id_prefix: str | None = None) -> dict[str, Any]:
        """The first button whose label (or custom_id prefix) matches.

        Args:
            label: the exact label.
            custom_id_prefix: the start of its custom_id.
        """
        for button in self.buttons:
            if label is not None and button.get("label") != label:
                continue
            if custom_id_prefix is not None and not str(button.get("custom_id", "")).startswith(custom_id_prefix):
                continue
            return button
        labels = [button.get("label") for button in self.buttons]
        raise KeyError(f"message {self.id} has no button label={label!r} prefix={custom_id_prefix!r}; labels {labels}")

    def file(self, filename: str | None = None) -> FakeAttachment:
        """An attachment by name, or the only one.

        Args:
            filename: its file name; None when the message has exactly one file.
        """
        if filename is None:
            if len(self.attachments) != 1:
                raise KeyError(f"message {self.id} has {len(self.attachments)} attachments, name one")
            return self.attachments[0]
        for attachment in self.attachments:
            if attachment.filename == filename:
                return attachment
        raise KeyError(f"message {self.id} has no attachment {filename!r}: {[a.filename for a in self.attachments]}")

    @property
    def text(self) -> str:
        """Content plus every embed's title, description, field names/values and footer, and v2 text displays."""
        parts = [self.content]
        for embed in self.embeds:
            parts += [embed.get("title", ""), embed.get("description", "")]
            for embed_field in embed.get("fields", []):
                parts += [embed_field.get("name", ""), embed_field.get("value", "")]
            parts.append((embed.get("footer") or {}).get("text", ""))
        parts += [component.get("content", "") for component in self.all_components() if component.get("type") == 10]
        return "\n".join(part for part in parts if part)


@dataclass(frozen=True)
class CallbackRecord:
    """One ``POST /interactions/{id}/{token}/callback`` attempt, accepted or refused."""

    type: int
    data: dict[str, Any]
    files: list[FakeAttachment]
    at: float
    status: int
    error_code: int | None = None

    @property
    def accepted(self) -> bool:
        """Whether the fake answered 2xx."""
        return self.status < 300

    @property
    def ephemeral(self) -> bool:
        """Whether the callback asked for an ephemeral message."""
        return bool(int(self.data.get("flags") or 0) & EPHEMERAL)


@dataclass(frozen=True)
class WebhookCall:
    """One request on the interaction's webhook: a followup, or a GET/PATCH/DELETE of one of its messages."""

    kind: Literal["followup", "edit", "delete", "get"]
    message_id: int | None
    target: str
    payload: dict[str, Any]
    files: list[FakeAttachment]
    at: float
    status: int
    error_code: int | None = None

    @property
    def accepted(self) -> bool:
        """Whether the fake answered 2xx."""
        return self.status < 300


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request the bot made (API or CDN), with the status the fake answered.

    The raw bodies and the answer's headers are what the conformance check (``conformance.py``) reads;
    ``status`` 0 means the fake reset the connection and answered nothing.
    """

    method: str
    path: str
    query: dict[str, str]
    status: int
    at: float
    error_code: int | None = None
    fault: str | None = None
    handled: bool = True
    request_content_type: str = ""
    request_body: bytes = b""
    answer_headers: dict[str, str] = field(default_factory=dict)
    answer_body: bytes = b""


@dataclass(frozen=True)
class ErrorRecord:
    """A 4xx the bot received (injected faults included)."""

    method: str
    path: str
    status: int
    code: int | None
    message: str
    at: float
    interaction_id: int | None = None
    fault: str | None = None


@dataclass(frozen=True)
class AutocompleteChoice:
    """One choice the bot offered."""

    name: str
    value: str | int | float


class FakeInteraction:
    """The test's handle on one injected interaction: what the bot answered, and when.

    Args:
        fake: the fake Discord.
        interaction_id: the interaction's id.
        token: its token.
        type: the interaction type (2 command, 3 component, 4 autocomplete, 5 modal submit).
        user: who triggered it.
        guild_id: the guild (None in DMs).
        channel_id: the channel it happened in.
        data: the ``data`` object sent to the bot.
        message_id: the message a component/modal belongs to.
        name: the command path or the custom_id, for messages.
    """

    def __init__(
        self,
        *,
        fake: FakeDiscord,
        interaction_id: int,
        token: str,
        type: int,
        user: FakeMember | FakeUser,
        guild_id: int | None,
        channel_id: int,
        data: dict[str, Any],
        message_id: int | None,
        name: str,
        attachment_size_limit: int,
    ) -> None:
        self._fake = fake
        self.id = interaction_id
        self.token = token
        self.type = type
        self.user = user
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.data = data
        self.message_id = message_id
        self.name = name
        self.attachment_size_limit = attachment_size_limit
        self.created_at = time.monotonic()
        self.created_clock = fake.clock.now()
        # When the INTERACTION_CREATE frame was written (the 3-s rule counts from here).
        self.sent_at: float | None = None
        self.callbacks: list[CallbackRecord] = []
        self.webhook_calls: list[WebhookCall] = []
        self.original_message_id: int | None = None
        self.followup_ids: list[int] = []
        self.callback_type: int | None = None

    def __repr__(self) -> str:
        return f"<FakeInteraction id={self.id} type={self.type} name={self.name!r} callbacks={len(self.callbacks)}>"

    def metadata_payload(self) -> dict[str, Any]:
        """The ``interaction_metadata`` of this interaction's response messages.

        A component interaction names the message clicked; a modal submit names the interaction that
        opened the modal (``triggering_interaction_metadata``), as Discord's message object does.
        """
        user = self.user.user if isinstance(self.user, FakeMember) else self.user
        body: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "user": user.payload(),
            "authorizing_integration_owners": {"0": str(self.guild_id)} if self.guild_id else {},
        }
        if self.type == MESSAGE_COMPONENT and self.message_id is not None:
            body["interacted_message_id"] = str(self.message_id)
        if self.type == MODAL_SUBMIT and (opener := self.modal_opener()) is not None:
            body["triggering_interaction_metadata"] = opener.metadata_payload()
        return body

    def modal_opener(self) -> FakeInteraction | None:
        """For a modal submit: the latest earlier interaction the bot answered with this modal."""
        custom_id = self.data.get("custom_id")
        openers = [
            other
            for other in self._fake.interactions.values()
            if other.id != self.id
            and other.created_at <= self.created_at
            and (other.modal or {}).get("custom_id") == custom_id
        ]
        return max(openers, key=lambda other: other.created_at, default=None)

    def elapsed(self, moment: float | None = None) -> float:
        """Seconds since INTERACTION_CREATE was sent.

        Args:
            moment: a monotonic time; now when None.
        """
        start = self.sent_at if self.sent_at is not None else self.created_at
        return (time.monotonic() if moment is None else moment) - start

    @property
    def responses(self) -> list[CallbackRecord]:
        """Accepted callbacks (at most one on a well-behaved bot)."""
        return [callback for callback in self.callbacks if callback.accepted]

    @property
    def response(self) -> CallbackRecord | None:
        """The accepted callback, if any."""
        responses = self.responses
        return responses[0] if responses else None

    @property
    def acked(self) -> bool:
        """Whether a callback was accepted."""
        return self.callback_type is not None

    @property
    def deferred(self) -> bool:
        """Whether the accepted callback was a deferral (type 5 or 6)."""
        return self.callback_type in (DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE_MESSAGE)

    @property
    def ack_latency(self) -> float | None:
        """Seconds from INTERACTION_CREATE to the first callback attempt (accepted or not)."""
        return self.callbacks[0].at if self.callbacks else None

    @property
    def ephemeral(self) -> bool:
        """Whether the response message (the original) is ephemeral."""
        original = self.original
        if original is not None:
            return original.ephemeral
        response = self.response
        return bool(response and response.ephemeral)

    @property
    def original(self) -> FakeMessage | None:
        """Current state of the original response (after edits); for components after type 6/7, the clicked message."""
        if self.original_message_id is None:
            return None
        return self._fake.messages.get(self.original_message_id)

    @property
    def followups(self) -> list[FakeMessage]:
        """Followup messages in the order sent (current state)."""
        return [self._fake.messages[message_id] for message_id in self.followup_ids]

    @property
    def edits(self) -> list[WebhookCall]:
        """Accepted PATCHes of the original or a followup."""
        return [call for call in self.webhook_calls if call.kind == "edit" and call.accepted]

    @property
    def modal(self) -> dict[str, Any] | None:
        """The modal the bot opened (callback type 9), as sent."""
        for callback in self.responses:
            if callback.type == MODAL:
                return callback.data
        return None

    @property
    def choices(self) -> list[AutocompleteChoice] | None:
        """Autocomplete choices the bot offered (callback type 8)."""
        for callback in self.responses:
            if callback.type == AUTOCOMPLETE_RESULT:
                return [AutocompleteChoice(c["name"], c["value"]) for c in callback.data.get("choices", [])]
        return None

    @property
    def errors(self) -> list[ErrorRecord]:
        """4xx answers the fake gave for this interaction's callback and webhook calls."""
        return [error for error in self._fake.errors if error.interaction_id == self.id]

    @property
    def messages(self) -> list[FakeMessage]:
        """The original response (if a message) followed by the followups."""
        found = [] if self.original is None or self.original.interaction_id != self.id else [self.original]
        return found + [m for m in self.followups if m not in found]

    async def wait_until(self, predicate: Callable[[FakeInteraction], Any], timeout: float = 5.0) -> Any:
        """Wait until ``predicate(self)`` is truthy and return its value.

        Args:
            predicate: called on every change in the fake.
            timeout: seconds before TimeoutError.
        """
        return await self._fake.wait_for(lambda: predicate(self), timeout=timeout, what=f"{self!r}")

    async def wait_for_response(self, timeout: float = 5.0) -> CallbackRecord:
        """Wait for the first callback attempt (accepted or refused) and return it.

        Args:
            timeout: seconds before TimeoutError.
        """
        return await self.wait_until(lambda i: i.callbacks[0] if i.callbacks else None, timeout)

    async def wait_for_followups(self, count: int = 1, timeout: float = 5.0) -> list[FakeMessage]:
        """Wait until at least ``count`` followups exist and return them.

        Args:
            count: how many.
            timeout: seconds before TimeoutError.
        """
        return await self.wait_until(lambda i: i.followups if len(i.followup_ids) >= count else None, timeout)

    async def wait_for_original(
        self, predicate: Callable[[FakeMessage], Any] | None = None, timeout: float = 5.0
    ) -> FakeMessage:
        """Wait until the original response exists (and satisfies ``predicate``) and return it.

        Args:
            predicate: extra condition on the message, e.g. ``lambda m: not m.loading``.
            timeout: seconds before TimeoutError.
        """

        def ready(interaction: FakeInteraction) -> FakeMessage | None:
            original = interaction.original
            if original is None or (predicate is not None and not predicate(original)):
                return None
            return original

        return await self.wait_until(ready, timeout)

    async def wait_for_message(
        self, predicate: Callable[[FakeMessage], Any] | None = None, timeout: float = 5.0
    ) -> FakeMessage:
        """Wait for a message of this interaction (original or followup) satisfying ``predicate``.

        Args:
            predicate: condition on the message; any when None.
            timeout: seconds before TimeoutError.
        """

        def found(interaction: FakeInteraction) -> FakeMessage | None:
            for message in interaction.messages:
                if not message.loading and (predicate is None or predicate(message)):
                    return message
            return None

        return await self.wait_until(found, timeout)
