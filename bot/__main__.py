"""``python -m bot`` and the ``cadenza-bot`` script: read the settings, run the bot, stop cleanly.

Problems only the person starting the bot can fix (no token, a refused token, the Message Content
intent switched off, no model, no way to reach Discord) print one line and exit with status 2,
without a traceback. A network that is down at start-up is tried again for
``BOT_CONNECT_RETRY_SECONDS`` first (:mod:`bot.connect`).
"""

from __future__ import annotations

import asyncio
import logging
import sys

import discord
from pydantic import ValidationError

from bot.connect import DiscordUnreachable, start_with_retries
from bot.settings import PORTAL_URL, BotSettings, settings_problem, token_help
from composer.errors import ComposerError
from composer.queue.settings import QueueSettings
from composer.settings import ComposerSettings

log = logging.getLogger(__name__)


def main() -> int:
    """Run the bot until it is stopped; returns the exit status."""
    try:
        settings = BotSettings()
    except ValidationError as error:
        print(settings_problem(error, "BOT_"), file=sys.stderr)
        return 2
    try:
        composer_settings = ComposerSettings()
        queue_settings = QueueSettings()
    except ValidationError as error:
        print(settings_problem(error, "COMPOSER_"), file=sys.stderr)
        return 2
    discord.utils.setup_logging(level=getattr(logging, settings.log_level), root=True)
    # Loaded only now: the model code takes a moment to import, and settings problems come first.
    from bot.app import create_bot, make_composer

    composer = make_composer(settings, composer_settings, queue_settings)
    try:
        asyncio.run(
            start_with_retries(
                lambda: create_bot(settings, composer),
                settings.token.get_secret_value(),
                settings.connect_retry_seconds,
            )
        )
    except discord.LoginFailure:
        print(token_help("Discord refused BOT_TOKEN"), file=sys.stderr)
        return 2
    except discord.PrivilegedIntentsRequired:
        print(
            "error: turn on the Message Content intent under Bot > Privileged Gateway Intents at "
            f"{PORTAL_URL}; prefix commands such as !compose need it.",
            file=sys.stderr,
        )
        return 2
    except DiscordUnreachable as error:
        print(error, file=sys.stderr)
        return 2
    except ComposerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        log.info("stopped")
    finally:
        composer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
