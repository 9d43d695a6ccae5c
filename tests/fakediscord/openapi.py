"""Discord's openapi.json as the conformance check reads it: pointers, validators, error details, bodies.

:class:`SpecView` is one patched copy of the spec with a validator cache; the helpers turn header,
query and multipart strings into the JSON the spec describes and jsonschema errors into the field and
schema path a report names. Used by :mod:`tests.fakediscord.conformance`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.fakediscord.spec_exceptions import unescape

SPEC_URI = "https://discord.com/api/v10/openapi.json"
# Mark what simplify_unions rewrote (jsonschema ignores unknown keywords): branch guards, and enums
# that were a oneOf of consts in openapi.json.
DISPATCH = "x-jamgen-dispatch"
ENUM_OF_CONSTS = "x-jamgen-enum-of-consts"
# Keywords that only describe a schema: a oneOf branch with nothing else but a const is a plain value.
ANNOTATIONS = frozenset({"title", "description", "const"})
# Snowflakes as JSON strings (no leading zero; 15+ digits: every id since 2015).
SNOWFLAKE_TEXT = re.compile(r"[1-9][0-9]{14,19}")
TRUTHY = {"true": True, "1": True, "false": False, "0": False}
REQUIRED_PROPERTY = re.compile(r"^'(.+)' is a required property$")
MAX_MESSAGE = 240


def escape(key: str) -> str:
    """A key as a JSON pointer segment.

    Args:
        key: the key.
    """
    return key.replace("~", "~0").replace("/", "~1")


def canonical_ids(instance: Any) -> str:
    """``instance`` as JSON text with every snowflake string renumbered by first appearance.

    Validity does not depend on which ids a payload carries, only on their shape and which are equal
    (the spec constrains ids by pattern and uniqueItems, never by value): a renumbered id keeps its
    length, its pattern and its equalities, so two payloads with the same canonical text are both valid
    or both not.

    Args:
        instance: a JSON value.
    """
    ids: dict[str, str] = {}

    def renumber(text: str) -> str:
        if not SNOWFLAKE_TEXT.fullmatch(text):
            return text
        if text not in ids:
            ids[text] = str(10 ** (len(text) - 1) + len(ids))
        return ids[text]

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return renumber(node)
        if isinstance(node, dict):
            return {renumber(key): walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    return json.dumps(walk(instance))


def coerce(value: str, schema: dict[str, Any]) -> Any:
    """A header or query/path string as the JSON value its schema describes (left as is when it does not parse)."""
    kinds = schema.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else kinds
    try:
        if "integer" in kinds:
            return int(value)
        if "number" in kinds:
            return float(value)
    except ValueError:
        return value
    if "boolean" in kinds:
        # Discord takes true/false and 1/0 in query strings; discord.py sends int(flag).
        return TRUTHY.get(value.lower(), value)
    return value


def field_of(error: ValidationError) -> str:
    """Where in the instance: ``author.id``, ``components[0].components[1].custom_id``; ``(body)`` at the root."""
    text = ""
    for part in error.absolute_path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    if error.validator == "required" and (missing := REQUIRED_PROPERTY.match(error.message)):
        text += f".{missing.group(1)}" if text else missing.group(1)
    return text or "(body)"


def leaves(error: ValidationError) -> list[ValidationError]:
    """The errors worth reporting: inside a oneOf/anyOf, those of the one branch of the right kind.

    A branch is of another kind when the instance's JSON type or its ``type`` field (components,
    callbacks, the null branch of a nullable) does not fit it; when one branch is left its own errors
    say what is wrong, otherwise the union's error stands.
    """
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        return [error]
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    fitting = [subs for subs in branches.values() if not any(_other_kind(sub) for sub in subs)]
    if len(fitting) != 1:
        return [error]
    return [leaf for sub in fitting[0] for leaf in leaves(sub)]


def _other_kind(error: ValidationError) -> bool:
    path = list(error.relative_path)
    if error.schema is False and not path:
        return True  # the "else": false of a dispatch guard (simplify_unions): turned away on its type
    return (error.validator == "type" and not path) or (path == ["type"] and error.validator in ("enum", "const"))


def simplify_unions(spec: dict[str, Any]) -> dict[str, Any]:
    """Rewrite oneOf/anyOf unions to cheaper schemas with the same verdicts, in place; returns ``spec``.

    jsonschema validates every branch of a union in full, so a command option or a component is checked
    against all of its eleven or seven kinds, and every enum-like type (a oneOf of 20 titled consts)
    costs 20 validations. So:

    - a oneOf whose branches are only distinct consts becomes an ``enum`` of them;
    - a branch ``B`` whose ``type`` field must be one of ``V`` becomes ``{"if": {"properties": {"type":
      {"enum": V}}}, "then": B, "else": false}``: B refuses a ``type`` outside V anyway, but the other
      kinds are now turned away on that one field.

    Reports still point into openapi.json (:meth:`SpecView.schema_pointer` maps the rewrites back).

    Args:
        spec: a copy of openapi.json.
    """

    def target(branch: Any) -> Any:
        while isinstance(branch, dict) and isinstance(branch.get("$ref"), str):
            branch = SpecView.lookup(spec, branch["$ref"])
        return branch

    def guarded(branch: Any) -> Any:
        kind = (target(branch).get("properties") or {}).get("type") if isinstance(target(branch), dict) else None
        values = [kind["const"]] if isinstance(kind, dict) and "const" in kind else (kind or {}).get("enum")
        if not values:
            return branch
        guard = {"properties": {"type": {"enum": values}}}
        return {"if": guard, "then": branch, "else": False, DISPATCH: True}

    def consts(branches: list[Any]) -> list[Any] | None:
        plain = (isinstance(branch, dict) and "const" in branch and set(branch) <= ANNOTATIONS for branch in branches)
        if not all(plain):
            return None
        values = [branch["const"] for branch in branches]
        distinct = {json.dumps(value, sort_keys=True) for value in values}
        return values if len(distinct) == len(values) else None

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("oneOf"), list) and (values := consts(node["oneOf"])) is not None:
                del node["oneOf"]
                node.update({"enum": values, ENUM_OF_CONSTS: True})
            for union in ("oneOf", "anyOf"):
                if isinstance(node.get(union), list):
                    node[union] = [guarded(branch) for branch in node[union]]
            children: Iterable[Any] = node.values()
        elif isinstance(node, list):
            children = node
        else:
            return
        for child in children:
            if not (isinstance(child, dict) and child.get(DISPATCH)):
                walk(child)
            else:
                walk(child["then"])

    walk(spec)
    return spec


def shorten(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """A multipart/form-data body as the object the spec describes: ``payload_json``'s fields plus the other parts.

    File parts (``files[n]``) become ``"<n bytes>"`` strings: the spec types them as binary strings.

    Args:
        content_type: the request's Content-Type, with its boundary.
        body: the raw body.
    """
    boundary = re.search(r'boundary="?([^";]+)"?', content_type)
    if boundary is None:
        raise ValueError("multipart body without a boundary")
    fields: dict[str, Any] = {}
    payload: dict[str, Any] = {}
    for chunk in body.split(b"--" + boundary.group(1).encode())[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        head, _, data = chunk.partition(b"\r\n\r\n")
        data = data.removesuffix(b"\r\n")
        name = re.search(rb'(?<!file)name="([^"]*)"', head)
        if name is None:
            raise ValueError("multipart part without a name")
        if name.group(1) == b"payload_json":
            payload = json.loads(data)
        elif b"filename=" in head:
            fields[name.group(1).decode()] = f"<{len(data)} bytes>"
        else:
            fields[name.group(1).decode()] = data.decode()
    return {**fields, **payload} if isinstance(payload, dict) else payload


class SpecView:
    """One patched copy of openapi.json: pointer lookups and cached validators.

    Args:
        spec: the loaded openapi.json, already patched.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = simplify_unions(spec)
        resource = Resource.from_contents(spec, default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
        self._validators: dict[str, Any] = {}
        self._nodes: dict[str, Any] = {}
        # (local $ref, digest of the sub-instance) of every referenced part found valid: a progress
        # edit repeats its author, buttons and metadata, so only what changed is validated again.
        self._valid_parts: set[tuple[str, bytes]] = set()
        self._validator_class = validators.extend(Draft202012Validator, {"$ref": self._remembering_ref})
        # (schema pointer, digest of the id-canonical instance) of everything found valid: the same
        # command sync, user and application answers come back in every test with fresh ids only.
        self._valid: set[tuple[str, bytes]] = set()

    @staticmethod
    def lookup(spec: dict[str, Any], pointer: str) -> Any:
        """The node at a ``#/...`` JSON pointer in ``spec``.

        Args:
            spec: the document.
            pointer: the pointer.
        """
        node: Any = spec
        for part in pointer.removeprefix("#").split("/")[1:]:
            node = node[int(part)] if isinstance(node, list) else node[unescape(part)]
        return node

    def node(self, pointer: str) -> Any:
        """The spec node at a ``#/...`` JSON pointer (looked up once, the copy is not changed after setup).

        Args:
            pointer: the pointer.
        """
        if pointer not in self._nodes:
            self._nodes[pointer] = self.lookup(self.spec, pointer)
        return self._nodes[pointer]

    def deref(self, pointer: str) -> tuple[str, Any]:
        """Follow ``$ref`` from ``pointer`` to the node it finally names; returns (its pointer, the node).

        Args:
            pointer: where to start.
        """
        node = self.node(pointer)
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            pointer = node["$ref"]
            node = self.node(pointer)
        return pointer, node

    def validator(self, pointer: str) -> Any:
        """The cached validator (a Draft 2020-12 one) of the schema at ``pointer``, built on first use.

        Args:
            pointer: a ``#/...`` pointer to a schema.
        """
        validator = self._validators.get(pointer)
        if validator is None:
            validator = self._validator_class({"$ref": SPEC_URI + pointer}, registry=self._registry)
            self._validators[pointer] = validator
        return validator

    def _remembering_ref(self, validator: Any, ref: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
        """The ``$ref`` keyword, skipping objects and arrays already found valid against the same target."""
        if not isinstance(instance, dict | list):
            yield from validator._validate_reference(ref=ref, instance=instance)
            return
        # Within one spec document a ref string names one schema; no $dynamicRef or unevaluated* here.
        key = (ref, hashlib.blake2b(json.dumps(instance).encode(), digest_size=16).digest())
        if key in self._valid_parts:
            return
        errors = list(validator._validate_reference(ref=ref, instance=instance))
        if not errors:
            self._valid_parts.add(key)
        yield from errors

    def errors(self, pointer: str, instance: Any) -> list[ValidationError]:
        """The errors of ``instance`` against the schema at ``pointer`` (none when known valid).

        Args:
            pointer: a ``#/...`` pointer to a schema.
            instance: the JSON value.
        """
        key = (pointer, hashlib.blake2b(canonical_ids(instance).encode(), digest_size=16).digest())
        if key in self._valid:
            return []
        errors = list(self.validator(pointer).iter_errors(instance))
        if not errors:
            self._valid.add(key)
        return errors

    def schema_pointer(self, root: str, error: ValidationError) -> str:
        """The pointer into openapi.json of the keyword that failed (``$ref`` hops followed).

        Args:
            root: the pointer of the schema validated against.
            error: one of its errors.
        """
        pointer, node = root, self.node(root)
        for key in error.absolute_schema_path:
            if key == "then" and isinstance(node, dict) and node.get(DISPATCH):
                node = node["then"]  # a dispatch guard is not in openapi.json: its branch is
                continue
            if key == "enum" and isinstance(node, dict) and node.get(ENUM_OF_CONSTS):
                return f"{pointer}/oneOf"  # openapi.json says it as a oneOf of consts
            # jsonschema leaves "$ref" out of schema paths: hop through references until the key is there.
            while isinstance(node, dict) and key not in node and isinstance(node.get("$ref"), str):
                pointer = node["$ref"]
                node = self.node(pointer)
            pointer = f"{pointer}/{escape(str(key))}"
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                node = None
        return pointer
