"""Short job ids people can read aloud and type: 8 characters, no look-alikes."""

from __future__ import annotations

import secrets

# Lower-case letters and digits without 0/o, 1/l/i: 31 symbols, 31**8 ≈ 8.5e11 ids.
ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
ID_LENGTH = 8


def new_job_id() -> str:
    """A fresh random job id."""
    return "".join(secrets.choice(ALPHABET) for _ in range(ID_LENGTH))


def normalize_job_id(text: str) -> str:
    """The canonical form of an id someone typed: trimmed, lower case, without dashes or spaces.

    Args:
        text: an id as typed, e.g. ``" K3X9-QM2P "``.
    """
    return text.strip().lower().replace("-", "").replace(" ", "")


def looks_like_job_id(text: str) -> bool:
    """Whether ``text`` (already normalized) has the shape of a job id."""
    return len(text) == ID_LENGTH and all(ch in ALPHABET for ch in text)
