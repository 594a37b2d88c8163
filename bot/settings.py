"""The bot's settings, read from ``BOT_*`` environment variables and a ``.env`` file.

The composer keeps its own settings (``COMPOSER_MODEL``, ``COMPOSER_SOUNDFONT``, ...) in
:class:`composer.settings.ComposerSettings`; these are only what the Discord side needs. This
module imports nothing heavy, so a missing token is reported at once.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PORTAL_URL = "https://discord.com/developers/applications"
_TOKEN_SHAPE = re.compile(r"^[\w-]{20,}\.[\w-]{4,}\.[\w-]{20,}$")


def _numbers(text: str) -> list[int]:
    """Whole numbers separated by commas or spaces, as an environment variable lists them."""
    return [int(part) for part in re.split(r"[,\s]+", text.strip()) if part]


class BotSettings(BaseSettings):
    """Who the bot is, where it answers, and the limits that keep it responsive for everyone."""

    model_config = SettingsConfigDict(
        env_prefix="BOT_", env_file=".env", extra="ignore", env_ignore_empty=True
    )

    token: SecretStr = Field(description="the bot token from the Discord developer portal")
    prefix: str = Field("!", min_length=1, description="prefix for text commands, as in !compose")
    channels: Annotated[frozenset[int], NoDecode] = Field(
        frozenset(), description="comma-separated channel ids the bot answers in; empty: everywhere"
    )
    max_length: int = Field(2000, ge=1, description="most notes and chords in one piece (2000 at most)")
    cooldown_seconds: float = Field(20.0, ge=0, description="wait between two pieces of one user")
    max_jobs: int = Field(2, ge=1, le=64, description="pieces composed at the same time")
    max_queue: int = Field(
        20, ge=0, description="pieces waiting for a free composer before new ones are refused"
    )
    max_attachment_bytes: int = Field(500_000, ge=1_000, description="largest piece a user may upload")
    data_dir: Path = Field(
        Path("data"), description="folder for pieces being sent, the song requests and their songs"
    )
    request_member_limit: int = Field(3, ge=1, description="song requests one member may have waiting")
    request_guild_limit: int = Field(50, ge=1, description="song requests one server may have waiting")
    request_retries: int = Field(
        2, ge=0, le=10, description="times a song request that failed on the bot's side is tried again"
    )
    song_storage_mb: float = Field(
        500.0, ge=0, description="most disk space the files of played songs take; the oldest go first"
    )
    moderator_roles: Annotated[frozenset[str], NoDecode] = Field(
        frozenset(),
        description="comma-separated role names or ids whose members moderate the song queue, "
        "besides members with Manage Server",
    )
    shard_count: Annotated[int, Field(ge=1)] | Literal["auto"] | None = Field(
        None, description="run sharded: 'auto' (Discord's recommendation) or a number; empty: one connection"
    )
    shard_ids: Annotated[tuple[int, ...], NoDecode] = Field(
        (), description="comma-separated shards this process runs, when shards run in several processes"
    )
    max_voice: int = Field(
        4, ge=0, le=64, description="voice channels the bot plays in at once, across all servers; 0: no voice"
    )
    voice_idle_seconds: float = Field(
        180.0,
        ge=5,
        description="how long the bot stays in a voice channel with nobody listening or nothing playing",
    )
    voice_buffer_seconds: float = Field(
        4.0, ge=1, le=30, description="seconds of music rendered ahead of what a voice channel hears"
    )
    radio_length: int = Field(
        300,
        ge=10,
        le=2000,
        description="notes and chords of each radio piece (300: about 2 minutes at 100 bpm)",
    )
    connect_retry_seconds: float = Field(
        300.0, ge=0, description="how long to keep trying when Discord cannot be reached at start-up"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="logging level")

    @field_validator("token")
    @classmethod
    def _token_shape(cls, token: SecretStr) -> SecretStr:
        """Catch a pasted client secret or application id before Discord refuses it."""
        if not _TOKEN_SHAPE.match(token.get_secret_value().strip()):
            raise ValueError("this does not look like a bot token")
        return SecretStr(token.get_secret_value().strip())

    @field_validator("channels", mode="before")
    @classmethod
    def _split_channels(cls, value: object) -> object:
        """``123, 456`` from the environment; a collection when built in code."""
        return frozenset(_numbers(value)) if isinstance(value, str) else value

    @field_validator("moderator_roles", mode="before")
    @classmethod
    def _split_roles(cls, value: object) -> object:
        """``DJ, 123`` from the environment (role names may have spaces, so only commas split)."""
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("shard_count", mode="before")
    @classmethod
    def _auto_in_any_case(cls, value: object) -> object:
        return "auto" if isinstance(value, str) and value.strip().lower() == "auto" else value

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _split_shard_ids(cls, value: object) -> object:
        """``0, 1`` from the environment; a collection when built in code."""
        return tuple(_numbers(value)) if isinstance(value, str) else value

    @field_validator("shard_ids")
    @classmethod
    def _shards_fit(cls, shard_ids: tuple[int, ...], info: ValidationInfo) -> tuple[int, ...]:
        """Shard ids name shards of a known count, as Discord routes each server to one of them."""
        count = info.data.get("shard_count")
        if shard_ids and not isinstance(count, int):
            raise ValueError("set BOT_SHARD_COUNT to the number of shards of all processes too")
        if any(not 0 <= shard < count for shard in shard_ids):
            raise ValueError(f"shard ids are from 0 to {count - 1} for {count} shards")
        return shard_ids

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


def token_help(problem: str) -> str:
    """The one line a person sees when the token is missing or refused."""
    return (
        f"error: {problem}. Set BOT_TOKEN to your bot's token in a .env file in the folder you start "
        f"the bot from, or in the environment (get one under Bot > Reset Token at {PORTAL_URL})."
    )


def settings_problem(error: ValidationError, prefix: str) -> str:
    """One line that says which ``prefix`` setting is wrong and why, for :func:`bot.__main__.main`."""
    problems = [e for e in error.errors() if e["loc"]]
    token = [e for e in problems if prefix == "BOT_" and e["loc"][0] == "token"]
    if token:
        return token_help(
            "BOT_TOKEN is missing" if token[0]["type"] == "missing" else "BOT_TOKEN is not a bot token"
        )
    names = ", ".join(f"{prefix}{str(e['loc'][0]).upper()} ({e['msg']})" for e in problems)
    return f"error: fix these settings in .env or the environment: {names}."
