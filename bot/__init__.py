"""Cadenza on Discord: compose and continue pieces in a channel; all music work is :mod:`composer`'s.

One module per job:

- :mod:`bot.settings` reads the ``BOT_*`` settings; :mod:`bot.__main__` starts the bot;
- :mod:`bot.app` builds it (:func:`~bot.app.create_bot`) from its settings and a composer;
- :mod:`bot.options` reads ``300 tempo=90 key=Am`` into a :class:`~composer.service.ComposeRequest`;
- :mod:`bot.attachments` finds and fetches the piece to continue, within the size limit;
- :mod:`bot.jobs` is the queue: one job per user, a global cap, places in line, cooldowns;
- :mod:`bot.pieces` runs one job: progress message, composition, the answer with its files;
- :mod:`bot.buttons` holds the Again / Continue / Variation buttons that survive restarts;
- :mod:`bot.failures` turns any error into what the user reads, logging the unexpected ones;
- :mod:`bot.cogs` holds the commands: ``compose``/``continue``, ``help``/``status``, errors.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cadenza")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
