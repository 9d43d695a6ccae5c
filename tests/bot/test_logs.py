import io
import logging

import pytest

from bot.logs import MASK, configure_logging

BOT_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789"
INTERACTION_TOKEN = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5OmFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6"


@pytest.fixture
def captured():
    stream = io.StringIO()
    handler = configure_logging("DEBUG", secrets=["plain-secret-value"], stream=stream)
    yield stream
    logging.getLogger().removeHandler(handler)


@pytest.mark.parametrize(
    "line",
    [
        f"POST https://discord.com/api/v10/interactions/123456/{INTERACTION_TOKEN}/callback has returned 204",
        f"PATCH /api/v10/webhooks/987654321/{INTERACTION_TOKEN}/messages/@original",
        f"payload {{'type': 2, 'token': '{INTERACTION_TOKEN}', 'id': '1'}}",
        f'{{"op": 0, "d": {{"token": "{INTERACTION_TOKEN}"}}}}',
        f"Authorization: Bot {BOT_TOKEN}",
        f"identify with {BOT_TOKEN}",
        "configured plain-secret-value here",
    ],
)
def test_secrets_are_masked_at_debug_whatever_logger(captured, line):
    logging.getLogger("discord.http").debug(line)
    logging.getLogger("some.other.library").debug("%s", line)
    text = captured.getvalue()
    assert INTERACTION_TOKEN not in text
    assert BOT_TOKEN not in text
    assert "plain-secret-value" not in text
    assert text.count(MASK) >= 2


def test_ids_stay_readable(captured):
    logging.getLogger("discord.webhook").debug(f"/webhooks/987654321/{INTERACTION_TOKEN}")
    assert "/webhooks/987654321/" + MASK in captured.getvalue()


def test_exception_text_is_masked(captured):
    try:
        raise RuntimeError(f"failed /interactions/1/{INTERACTION_TOKEN}/callback")
    except RuntimeError:
        logging.getLogger("x").exception("boom %s", BOT_TOKEN)
    text = captured.getvalue()
    assert "RuntimeError" in text
    assert INTERACTION_TOKEN not in text
    assert BOT_TOKEN not in text


def test_ordinary_lines_are_untouched(captured):
    logging.getLogger("jamgen").info("job abc12345 queued after %.1f s", 0.25)
    assert "job abc12345 queued after 0.2 s" in captured.getvalue()
