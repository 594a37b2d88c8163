"""Shared fixtures: a tiny real model, trained for seconds on hand-made pieces."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest

from composer.events import Event
from composer.model.network import ModelConfig
from training.sources import Piece

TINY = ModelConfig(
    units=24,
    layers=2,
    dropout=0.0,
    pitch_embedding=12,
    rhythm_embedding=4,
    velocity_embedding=2,
    style_embedding=2,
)


def scale_piece(name: str, root: int, style: str, length: int = 48) -> Piece:
    """A hand-made piece: a major scale up and down with a closing chord, in quarters and eighths."""
    steps = [0, 2, 4, 5, 7, 9, 11, 12]
    walk = steps + steps[::-1]
    events = []
    for i in range(length):
        pitch = root + walk[i % len(walk)]
        tick = 12 if i % 4 == 0 else 6
        events.append(Event((pitch,), tick, tick, 4 + (i % 2)))
    events.append(Event((root - 12, root, root + 4, root + 7), 24, 24, 5))
    return Piece(name, style, tuple(events), 96.0)


@pytest.fixture(scope="session")
def tiny_pieces() -> list[Piece]:
    return [scale_piece(f"p{i}", 55 + i, "bach" if i % 2 else "folk") for i in range(8)]


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory, tiny_pieces):
    """A real model trained for a few epochs; its artifact path."""
    from training.train import TrainOptions, train

    out = tmp_path_factory.mktemp("model") / "tiny"
    options = TrainOptions(
        out=out,
        model=TINY,
        epochs=3,
        batch_size=8,
        sequence_length=16,
        validation=0.25,
        verbose=0,
        learning_rate=1e-2,
    )
    return train(options, pieces=tiny_pieces).path


@pytest.fixture
def watch_submissions():
    """Factory: start a composer's batcher and record every piece handed to it, with its future
    (each piece is still generated as it would be)."""

    def watch(composer: object) -> list:
        composer.load()  # starts the batcher
        seen = []
        original = composer._batcher.submit_all

        def submit_all(pieces: list) -> list:
            futures = original(pieces)
            seen.extend(zip(pieces, futures, strict=True))
            return futures

        composer._batcher.submit_all = submit_all
        return seen

    return watch


FAKE_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA.GaBcDe.abcdefghijklmnopqrstuvwxyz0123"


@pytest.fixture(scope="session")
def tiny_composer(tiny_model_path):
    """A composer on the tiny model, shared by the bot tests."""
    from composer.service import Composer
    from composer.settings import ComposerSettings

    composer = Composer(ComposerSettings(model=tiny_model_path), workers=2)
    yield composer
    composer.close()


@pytest.fixture
async def make_bot(tiny_composer, tmp_path, monkeypatch):
    """Factory: a real CadenzaBot with some BOT_* settings, set up as at login, on a FakeDiscord."""
    from bot.app import create_bot
    from bot.settings import BotSettings
    from tests.test_bot_support import FakeDiscord

    bots = []

    async def make(fake: FakeDiscord | None = None, **settings) -> FakeDiscord:
        """``fake``: an earlier bot's Discord, to start a new bot on it as after a restart."""
        options = {"token": FAKE_TOKEN, "cooldown_seconds": 0, "data_dir": tmp_path / "data"} | settings
        bot = create_bot(BotSettings(_env_file=None, **options), tiny_composer)
        bots.append(bot)
        fake = fake or FakeDiscord()
        fake.install(bot, monkeypatch)
        await bot._async_setup_hook()
        await bot.setup_hook()
        return fake

    yield make
    for bot in bots:
        await bot.close()


@pytest.fixture
async def discord_fake(make_bot):
    """A bot with default settings (no cooldown) on a FakeDiscord."""
    return await make_bot()
