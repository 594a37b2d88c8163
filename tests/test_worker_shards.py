"""The sharded bot: ``BOT_SHARD_COUNT`` and ``BOT_SHARD_IDS`` make an AutoShardedBot that works the same.

Commands go through discord.py's machinery on :class:`tests.test_bot_support.FakeDiscord`; the
gateway connections of the shards are stand-ins with a latency, as no network is used.
"""

from __future__ import annotations

import discord
import pytest
from discord.ext import commands
from discord.shard import Shard

from bot.app import CadenzaBot, ShardedCadenzaBot, create_bot
from bot.settings import BotSettings
from tests.conftest import FAKE_TOKEN
from tests.test_bot import answer, assert_is_a_piece, fields
from tests.test_bot_support import GUILD_ID


class Gateway:
    """What :class:`discord.ShardInfo` reads of a shard's websocket."""

    def __init__(self, shard_id: int, latency: float, open: bool = True) -> None:
        self.shard_id = shard_id
        self.latency = latency
        self.open = open


def settings(tmp_path, **shards) -> BotSettings:
    return BotSettings(_env_file=None, token=FAKE_TOKEN, cooldown_seconds=0, data_dir=tmp_path, **shards)


def test_unsharded_by_default(tiny_composer, tmp_path):
    bot = create_bot(settings(tmp_path), tiny_composer)
    assert type(bot) is CadenzaBot
    assert not isinstance(bot, commands.AutoShardedBot)


@pytest.mark.parametrize(
    ("shards", "count", "ids"),
    [({"shard_count": "auto"}, None, None), ({"shard_count": 4, "shard_ids": "1, 3"}, 4, [1, 3])],
)
def test_shard_settings_make_an_auto_sharded_bot(tiny_composer, tmp_path, shards, count, ids):
    bot = create_bot(settings(tmp_path, **shards), tiny_composer)
    assert isinstance(bot, ShardedCadenzaBot)
    assert isinstance(bot, commands.AutoShardedBot) and isinstance(bot, CadenzaBot)
    assert (bot.shard_count, bot.shard_ids) == (count, ids)


async def test_a_sharded_bot_composes_and_shows_each_shard_in_status(make_bot, monkeypatch):
    fake = await make_bot(shard_count=2, shard_ids=(0, 1))
    bot = fake.bot
    assert isinstance(bot, ShardedCadenzaBot)

    await fake.send("!compose 8")
    assert_is_a_piece(fake, answer(fake))

    gateways = {0: Gateway(0, 0.042), 1: Gateway(1, float("inf"))}
    monkeypatch.setattr(bot, "_reconnect", True, raising=False)  # set when the bot connects
    shards = {i: Shard(ws, bot, lambda item: None) for i, ws in gateways.items()}
    monkeypatch.setattr(bot, "_AutoShardedClient__shards", shards)
    home = (GUILD_ID >> 22) % 2  # the shard Discord routes the test's server to
    await fake.send("!status")
    lines = fields(answer(fake))["Shards"].splitlines()
    servers = {home: 1, 1 - home: 0}
    assert lines == [
        "2 connected here, of 2 in all",
        f"#0: 42 ms, {servers[0]} servers",
        f"#1: connecting, {servers[1]} servers",
    ]

    gateways[1].open = False
    await fake.send("!status")
    assert fields(answer(fake))["Shards"].splitlines()[2] == f"#1: closed, {servers[1]} servers"


async def test_an_unsharded_bot_has_no_shards_in_status(discord_fake):
    await discord_fake.send("!status")
    assert "Shards" not in fields(answer(discord_fake))
    assert not isinstance(discord_fake.bot, discord.AutoShardedClient)
