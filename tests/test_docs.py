"""The README's settings table and ``.env.example`` agree with the settings classes, name for name
and default for default, so neither can drift from the code again."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from bot.app import INVITE_PERMISSIONS, invite_url
from bot.settings import BotSettings
from composer.queue.settings import QueueSettings
from composer.settings import ComposerSettings

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
ENV_EXAMPLE = (REPO / ".env.example").read_text()
# Read with os.environ rather than a settings class: training's parse cache.
OTHER_VARIABLES = {"CADENZA_CACHE_DIR": "~/.cache/cadenza"}


def settings_defaults() -> dict[str, object]:
    """Every variable of the three settings classes, with its default (``PydanticUndefined``: required)."""
    found: dict[str, object] = {}
    for cls in (BotSettings, ComposerSettings, QueueSettings):
        prefix = cls.model_config["env_prefix"]
        assert issubclass(cls, BaseSettings)
        for name, field in cls.model_fields.items():
            found[f"{prefix}{name.upper()}"] = field.default
    return found


def shown(default: object) -> str | None:
    """How a default is written: ``2000`` for 2000.0, the repository path of a bundled file;
    None for defaults written as "(empty...)"."""
    if default is None or (isinstance(default, (str, frozenset, tuple)) and not default):
        return None
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    if isinstance(default, Path) and default.is_absolute():
        return str(default.relative_to(REPO))
    return str(default)


def readme_table() -> dict[str, str]:
    """The Settings section's table: variable name to its Default cell."""
    section = README.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| (.+?) \| .+ \|$", section, re.MULTILINE)
    assert rows, "no settings table under ## Settings"
    return dict(rows)


def env_example() -> dict[str, tuple[str, bool]]:
    """``.env.example``'s variables: name to (value, whether the line is commented out)."""
    lines = re.findall(r"^(# )?([A-Z][A-Z_]+)=(.*)$", ENV_EXAMPLE, re.MULTILINE)
    return {name: (value, bool(comment)) for comment, name, value in lines}


def test_readme_has_one_settings_table():
    assert README.count("| Variable | Default | Meaning |") == 1
    assert "## Configuration" not in README


def test_the_readme_table_lists_every_setting_and_only_those():
    assert set(readme_table()) == set(settings_defaults()) | set(OTHER_VARIABLES)


@pytest.mark.parametrize("name", sorted(settings_defaults()))
def test_the_readme_table_shows_each_default(name):
    cell = readme_table()[name]
    default = settings_defaults()[name]
    if default is PydanticUndefined:
        assert cell == "(required)"
    elif shown(default) is None:
        assert cell.startswith("(empty")
    else:
        first = re.match(r"`([^`]*)`", cell)
        assert first and first[1] == shown(default), f"{name}: {cell} is not `{shown(default)}`"


def test_env_example_lists_every_setting_with_its_default():
    listed = env_example()
    assert set(listed) == set(settings_defaults()) | set(OTHER_VARIABLES)
    for name, default in settings_defaults().items():
        value, commented = listed[name]
        if commented:  # an example value, where the default is found or computed
            continue
        expected = "" if default is PydanticUndefined else shown(default) or ""
        assert value == expected, f".env.example sets {name}={value}, the default is {expected!r}"


def test_the_invitation_in_the_readme_is_the_one_the_bot_logs():
    assert invite_url("APPLICATION_ID") in README  # type: ignore[arg-type]
    for permission, granted in INVITE_PERMISSIONS:
        words = permission.replace("_", " ").title().replace(" In ", " in ")
        assert (f"**{words}**" in README) == granted, words
