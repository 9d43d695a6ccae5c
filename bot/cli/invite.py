"""`jamgen invite`: the OAuth2 URLs that add jamgen to a server (with the least permissions it needs) or to a
member's own account (a user install: its commands in any DM or server, answered privately).

The application id comes from ``--app-id``, else ``DISCORD_APP_ID``, else the bot token (whose first
part is the bot's user id, which for a bot equals its application id). Nothing is sent to Discord.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from urllib.parse import urlencode

from bot.cli.doctor import application_id_from_token
from bot.config import Settings
from bot.errors import UserInputError

AUTHORIZE_URL = "https://discord.com/oauth2/authorize"
SCOPES = ("bot", "applications.commands")
# A user install has no bot user and no permissions: only the commands (resources/application.mdx
# "Installation Context": user-installed apps "don't require any server-specific permissions").
USER_SCOPES = ("applications.commands",)
GUILD_INSTALL, USER_INSTALL = 0, 1


@dataclass(frozen=True)
class Permission:
    """One Discord permission jamgen asks for.

    Args:
        name: as the developer portal and server settings show it.
        bit: its bit in Discord's permission integer.
        why: what jamgen needs it for.
    """

    name: str
    bit: int
    why: str


# The least jamgen needs; Discord's bit numbers (developer docs, "Permissions").
PERMISSIONS: tuple[Permission, ...] = (
    Permission("View Channel", 10, "see the channels it is used in"),
    Permission("Send Messages", 11, "answer replies and post tracks once an interaction's 15 minutes are over"),
    Permission("Send Messages in Threads", 38, "the same inside threads"),
    Permission("Embed Links", 14, "the result card with prompt, model, seed, tempo and waveform"),
    Permission("Attach Files", 15, "upload the MP3s and waveform pictures"),
    Permission("Read Message History", 16, "read the message a reply points at (reply-to-remix)"),
    Permission("Create Public Threads", 35, "open a thread for each jam session (/session start)"),
    Permission("Pin Messages", 51, "pin a jam session's header in its thread"),
    Permission("Connect", 20, "join a voice channel to play a jam (/session voice)"),
    Permission("Speak", 21, "play takes in that voice channel"),
    Permission("Send Polls", 49, "post a jam's best-take poll (/session vote)"),
)


def permission_integer(permissions: tuple[Permission, ...] = PERMISSIONS) -> int:
    """The permission integer of the invite URL (the sum of the permissions' bits).

    Args:
        permissions: which permissions.
    """
    return sum(1 << p.bit for p in permissions)


def invite_url(app_id: int, *, guild_id: int | None = None) -> str:
    """The OAuth2 URL that adds the bot with jamgen's permissions and its slash commands.

    Args:
        app_id: the application id.
        guild_id: preselect this server (the admin can still cancel).
    """
    query: dict[str, str | int] = {
        "client_id": app_id,
        "permissions": permission_integer(),
        "integration_type": GUILD_INSTALL,  # added to a server, not to a user's account
        "scope": " ".join(SCOPES),
    }
    if guild_id:
        query |= {"guild_id": guild_id, "disable_guild_select": "true"}
    return f"{AUTHORIZE_URL}?{urlencode(query)}"


def user_install_url(app_id: int) -> str:
    """The OAuth2 URL that adds jamgen's commands to the member's own account (no bot, no permissions).

    Args:
        app_id: the application id.
    """
    query = {"client_id": app_id, "integration_type": USER_INSTALL, "scope": " ".join(USER_SCOPES)}
    return f"{AUTHORIZE_URL}?{urlencode(query)}"


def resolve_app_id(explicit: int | None, settings: Settings) -> int:
    """The application id to invite: the option, else DISCORD_APP_ID, else the token's bot id.

    Args:
        explicit: ``--app-id``.
        settings: jamgen's settings.

    Raises:
        UserInputError: none of the three gives one.
    """
    if explicit:
        return explicit
    if settings.discord_app_id:
        return settings.discord_app_id
    from_token = application_id_from_token(settings.discord_token.get_secret_value())
    if from_token:
        return from_token
    raise UserInputError(
        "No application id: pass --app-id, or set DISCORD_APP_ID (developer portal → your application → "
        "General Information → Application ID), or set DISCORD_TOKEN."
    )


def _positive_id(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"must be a numeric Discord id, got {text!r}")
    return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this subcommand's options.

    Args:
        parser: the subcommand's parser.
    """
    parser.add_argument(
        "--app-id", type=_positive_id, help="application id (default: DISCORD_APP_ID, else the token's)"
    )
    parser.add_argument("--guild", type=_positive_id, metavar="GUILD_ID", help="preselect this server")
    parser.add_argument(
        "--url-only", action="store_true", help="print only the URLs (the server's, then the user install's)"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Print both install URLs and what each permission is for.

    Args:
        args: parsed arguments.
        settings: jamgen's settings.

    Returns:
        0.
    """
    app_id = resolve_app_id(args.app_id, settings)
    if args.url_only:
        print(invite_url(app_id, guild_id=args.guild))
        print(user_install_url(app_id))
        return 0
    print("Add jamgen to a server (open it as a server admin, with Manage Server):")
    print(invite_url(app_id, guild_id=args.guild))
    print(f"Scopes: {' '.join(SCOPES)}. Permissions:")
    for p in PERMISSIONS:
        print(f"  {p.name:<25} {p.why}")
    print("Privileged intents: none. Message Content only if JAMGEN_MESSAGE_CONTENT_INTENT=true (README).")
    print("\nAdd jamgen to your own account (a user install: /generate in any DM or server, even without the bot):")
    print(user_install_url(app_id))
    print(f"Scopes: {' '.join(USER_SCOPES)}. No permissions. Enable both install types in the developer portal")
    print("(Installation → Installation Contexts: Guild Install and User Install).")
    return 0
