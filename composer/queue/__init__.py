"""Composing on other machines: the bot queues jobs in Redis, worker processes compose them.

- :mod:`composer.queue.settings` holds the ``COMPOSER_REDIS_*`` settings;
- :mod:`composer.queue.wire` turns requests and finished pieces into plain values and back;
- :mod:`composer.queue.remote` is the bot's side (same interface as the in-process composer);
- :mod:`composer.queue.worker` is the worker process (``python -m composer.queue.worker``).
"""
