"""The composer's settings, read from ``COMPOSER_*`` environment variables and a ``.env`` file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "default.cadenza"


class ComposerSettings(BaseSettings):
    """Where the model and SoundFont are, how many workers, and the limits on input pieces."""

    model_config = SettingsConfigDict(
        env_prefix="COMPOSER_", env_file=".env", extra="ignore", env_ignore_empty=True
    )

    model: Path = Field(DEFAULT_MODEL, description="the .cadenza model artifact to compose with")
    soundfont: Path | None = Field(None, description="General MIDI SoundFont; Debian's is found by default")
    audio_format: Literal["ogg", "mp3"] = Field("ogg", description="ogg (Opus) or mp3")
    sample_rate: Literal[24000, 48000] = Field(
        24000, description="audio sample rate: 24 kHz keeps sound up to 12 kHz and renders twice as fast"
    )
    workers: int = Field(2, ge=1, le=64, description="pieces whose files are made at the same time")
    batch: int = Field(64, ge=1, le=1024, description="most pieces generated together, one network step each")
    candidates: int | None = Field(
        None,
        ge=1,
        le=16,
        description="pieces drawn for each request, generated together; a new piece's critic keeps the one "
        "likeliest real, else the network's likeliest is kept (default: the critic's own count, else 1)",
    )
    harmony_candidates: int = Field(
        8, ge=1, le=64, description="harmonizations drawn for each melody; the network's likeliest is kept"
    )
    continuation_candidates: int = Field(
        8,
        ge=1,
        le=16,
        description="continuations drawn for each piece sent in, generated together; the one nearest the "
        "piece's key and texture is kept",
    )
    continuation_steering: float = Field(
        1.0,
        ge=0,
        le=5,
        description="how strongly a continuation leans to its piece's key, chord size and register (0: off)",
    )
    max_input_bytes: int = Field(2_000_000, ge=1_000, description="largest input piece accepted")
    max_input_notes: int = Field(50_000, ge=10, description="most notes in an input piece")
    max_input_quarters: float = Field(20_000, ge=10, description="longest input piece, in beats")
    parse_seconds: float = Field(30, gt=0, description="time limit for reading an input piece")
    parse_memory_mb: int = Field(2048, ge=256, description="memory limit for reading an input piece")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "WARNING", description="the command line's log level (the bot's is BOT_LOG_LEVEL)"
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value
