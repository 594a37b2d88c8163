"""The README's picture of a posted piece, rendered from the bot's real message payload.

This is not a screenshot of Discord. A real :class:`bot.app.CadenzaBot` with the bundled model
gets ``!compose 300`` from a member through discord.py's own gateway parser, exactly as the test
suite drives it (``tests/test_bot.py``); only Discord's HTTP edge is the suite's stand-in
(``tests/test_bot_support.py``), which records the message the bot sends. That payload (its
content, embed, attachments and buttons) and the files the bot uploaded, the piano-roll PNG the
composer made among them, are laid out by a small HTML template in Discord's dark style and
rendered to a PNG with headless Chromium.

What the template adds that the payload does not carry: the look of Discord (colours, fonts,
layout), the member's and the bot's names and default avatars, and the time, which is the stand-in's
fixed timestamp. The audio attachment is drawn as Discord's inline player, not played.

    .venv/bin/python scripts/readme_picture.py                  # docs/bot-message.png
    .venv/bin/python scripts/readme_picture.py --command '!compose 300 seed=7' --out /tmp/p.png
    .venv/bin/python scripts/readme_picture.py --html /tmp/p.html   # also keep the HTML

Needs Chromium (``apt-get install -y chromium``; ``--chromium`` names another binary).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import html
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402 - the MonkeyPatch that installs the stand-in, as in the tests
from PIL import Image, ImageChops  # noqa: E402

from bot.app import create_bot  # noqa: E402
from bot.settings import BotSettings  # noqa: E402
from composer.service import Composer  # noqa: E402
from composer.settings import ComposerSettings  # noqa: E402
from tests.test_bot_support import ALICE, BOT_USER, FakeDiscord  # noqa: E402

TOKEN = "MTA" + "x" * 21 + ".abcdef." + "y" * 27  # shaped like a token; nothing logs in
WIDTH = 860
"""Pixels across: a narrow Discord window, so the picture stays readable in the README."""
MAX_BYTES = 300_000


async def capture(command: str, data: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, bytes]]:
    """The member's message, the bot's answer as Discord stores it, and the files it uploaded."""
    settings = BotSettings(_env_file=None, token=TOKEN, cooldown_seconds=0, data_dir=data)
    composer = Composer(ComposerSettings(), workers=1)
    bot = create_bot(settings, composer)
    fake = FakeDiscord()
    try:
        with pytest.MonkeyPatch.context() as patch:
            fake.install(bot, patch)
            await bot._async_setup_hook()
            await bot.setup_hook()
            asked = await fake.send(command, author=ALICE)
            answer = fake.bot_messages()[-1]
            files = {a["filename"]: fake.file(a) for a in answer["attachments"]}
            await bot.close()
    finally:
        composer.close()
    if not any(name.endswith(".mid") for name in files):
        raise SystemExit(f"the bot did not post a piece: {answer['content']!r}")
    return asked, answer, files


# -- the template ------------------------------------------------------------------------------

CSS = """
* { box-sizing: border-box; }
body { margin: 0; background: #313338; color: #dbdee1; width: %(width)dpx;
  font: 16px/1.375 "Noto Sans", "gg sans", "Helvetica Neue", Arial, sans-serif; }
.channel { padding: 10px 0 14px; }
.top { height: 44px; border-bottom: 1px solid #1f2023; padding: 0 16px; display: flex;
  align-items: center; gap: 8px; font-weight: 600; color: #f2f3f5; }
.top .hash { color: #80848e; font-size: 24px; font-weight: 400; }
.msg { position: relative; padding: 2px 48px 2px 72px; margin-top: 17px; }
.avatar { position: absolute; left: 16px; width: 40px; height: 40px; border-radius: 50%%;
  display: flex; align-items: center; justify-content: center; color: #fff; font-weight: 700; }
.name { font-weight: 600; color: #f2f3f5; }
.app { background: #5865f2; color: #fff; font-size: 10px; font-weight: 600; border-radius: 3px;
  padding: 1px 4px; margin-left: 4px; vertical-align: 2px; }
.time { color: #949ba4; font-size: 12px; margin-left: 6px; }
.reply { position: relative; color: #b5bac1; font-size: 14px; margin: 0 0 4px; white-space: nowrap;
  overflow: hidden; }
.reply:before { content: ""; position: absolute; left: -38px; top: 9px; width: 33px; height: 12px;
  border-left: 2px solid #4e5058; border-top: 2px solid #4e5058; border-top-left-radius: 6px; }
.reply .who { color: #f2f3f5; font-weight: 600; margin-right: 4px; }
.reply .mini { display: inline-block; width: 16px; height: 16px; border-radius: 50%%;
  vertical-align: -3px; margin-right: 4px; }
code { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 85%%; background: #2b2d31;
  border: 1px solid #1e1f22; border-radius: 4px; padding: 0 3px; }
.embed { max-width: 520px; background: #2b2d31; border-left: 4px solid; border-radius: 4px;
  padding: 8px 16px 16px 12px; margin-top: 4px; display: grid; }
.embed .author { display: flex; align-items: center; gap: 8px; margin-top: 8px; font-size: 14px;
  font-weight: 600; color: #f2f3f5; }
.embed .author .mini { width: 24px; height: 24px; border-radius: 50%%; }
.embed .title { margin-top: 8px; font-weight: 600; color: #f2f3f5; }
.embed .desc { margin-top: 8px; font-size: 14px; }
.fields { display: grid; grid-template-columns: repeat(3, 1fr); gap: 8px; margin-top: 8px;
  font-size: 14px; }
.field .fname { font-weight: 600; color: #f2f3f5; margin-bottom: 2px; }
.field.wide { grid-column: 1 / -1; }
.embed img { margin-top: 16px; max-width: 100%%; border-radius: 4px; display: block; }
.embed .footer { margin-top: 8px; font-size: 12px; color: #b5bac1; }
.file { display: flex; align-items: center; gap: 10px; max-width: 432px; margin-top: 8px;
  background: #2b2d31; border: 1px solid #1e1f22; border-radius: 8px; padding: 10px 12px; }
.file .icon { width: 28px; height: 36px; border-radius: 3px; background: #949ba4; position: relative; }
.file .icon:after { content: ""; position: absolute; right: 0; top: 0; border-style: solid;
  border-width: 0 9px 9px 0; border-color: #2b2d31 #2b2d31 #6d6f78 #6d6f78; }
.file .fname { color: #00a8fc; }
.file .size { color: #949ba4; font-size: 12px; }
.audio { flex-wrap: wrap; }
.player { flex-basis: 100%%; display: flex; align-items: center; gap: 10px; margin-top: 6px;
  background: #1e1f22; border-radius: 3px; padding: 6px 10px; color: #b5bac1; font-size: 12px; }
.player .play { width: 0; height: 0; border-style: solid; border-width: 7px 0 7px 12px;
  border-color: transparent transparent transparent #dbdee1; }
.player .bar { flex: 1; height: 6px; border-radius: 3px; background: #4e5058; }
.buttons { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 8px; }
.button { height: 32px; padding: 2px 16px; border-radius: 3px; display: flex; align-items: center;
  gap: 6px; font-size: 14px; font-weight: 500; color: #fff; }
.s1 { background: #5865f2; } .s2 { background: #4e5058; } .s3 { background: #248046; }
.s4 { background: #da373c; } .s5 { background: #4e5058; }
.note { color: #949ba4; font-size: 12px; padding: 14px 16px 0; border-top: 1px solid #3f4147;
  margin: 18px 16px 0; padding-left: 0; }
"""


def markdown(text: str) -> str:
    """Discord's markdown, as much of it as the bot's messages use: ``code``, **bold**, *italic*."""
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    out = re.sub(r"(?<!\*)\*([^*]+)\*(?!\*)", r"<i>\1</i>", out)
    out = re.sub(r"&lt;@!?(\d+)&gt;", lambda m: f'<span class="name">@{user_name(m[1])}</span>', out)
    return out.replace("\n", "<br>")


def user_name(user_id: str) -> str:
    """The name a mention shows."""
    return {ALICE["id"]: ALICE["username"], BOT_USER["id"]: BOT_USER["username"]}.get(user_id, "member")


def avatar(user: dict[str, Any], size_class: str = "avatar") -> str:
    """Discord's default avatar for a user without one: a coloured disc (here with an initial)."""
    colour = "#5865f2" if user.get("bot") else "#ed4245"
    initial = html.escape(user["username"][0].upper())
    return f'<div class="{size_class}" style="background:{colour}">{initial}</div>'


def size_text(size: int) -> str:
    """A file size as Discord writes it under an attachment."""
    return f"{size / 1024:.2f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.2f} MB"


def embed_html(embed: dict[str, Any], images: dict[str, str]) -> str:
    """An embed: author, title, description, fields, image (from ``images``) and footer."""
    colour = f"#{embed.get('color', 0x1E1F22):06x}"
    parts = []
    if "author" in embed:
        parts.append(
            f'<div class="author"><span class="mini" style="background:#ed4245"></span>'
            f"{html.escape(embed['author']['name'])}</div>"
        )
    if "title" in embed:
        parts.append(f'<div class="title">{markdown(embed["title"])}</div>')
    if "description" in embed:
        parts.append(f'<div class="desc">{markdown(embed["description"])}</div>')
    if embed.get("fields"):
        fields = "".join(
            f'<div class="field{"" if f.get("inline") else " wide"}"><div class="fname">'
            f"{markdown(f['name'])}</div><div>{markdown(f['value'])}</div></div>"
            for f in embed["fields"]
        )
        parts.append(f'<div class="fields">{fields}</div>')
    image = embed.get("image", {}).get("url", "")
    if image.startswith("attachment://") and image.removeprefix("attachment://") in images:
        parts.append(f'<img src="{images[image.removeprefix("attachment://")]}" alt="">')
    if "footer" in embed:
        parts.append(f'<div class="footer">{markdown(embed["footer"]["text"])}</div>')
    return f'<div class="embed" style="border-color:{colour}">{"".join(parts)}</div>'


def attachment_html(attachment: dict[str, Any], shown_in_embed: set[str]) -> str:
    """A file under the message; an audio file with an (unplayable) player."""
    name = attachment["filename"]
    if name in shown_in_embed:
        return ""  # Discord shows a picture the embed uses only in the embed
    body = (
        f'<div class="icon"></div><div><div class="fname">{html.escape(name)}</div>'
        f'<div class="size">{size_text(attachment["size"])}</div></div>'
    )
    if name.endswith((".ogg", ".mp3", ".wav", ".flac", ".m4a")):
        player = (
            '<div class="player"><span class="play"></span><span>0:00</span><span class="bar"></span></div>'
        )
        return f'<div class="file audio">{body}{player}</div>'
    return f'<div class="file">{body}</div>'


def buttons_html(components: list[dict[str, Any]]) -> str:
    """Action rows of buttons, in their styles (1 blurple, 2 grey, 3 green, 4 red, 5 link)."""
    rows = []
    for row in components:
        buttons = []
        for button in row.get("components", []):
            emoji = html.escape(button.get("emoji", {}).get("name", "")) if button.get("emoji") else ""
            label = html.escape(button.get("label", ""))
            buttons.append(f'<div class="button s{button.get("style", 2)}">{emoji} {label}</div>')
        rows.append(f'<div class="buttons">{"".join(buttons)}</div>')
    return "".join(rows)


def page(asked: dict[str, Any], answer: dict[str, Any], files: dict[str, bytes]) -> str:
    """The HTML of the channel with the member's message and the bot's answer."""
    images = {
        name: "data:image/png;base64," + base64.b64encode(data).decode()
        for name, data in files.items()
        if name.endswith(".png")
    }
    used = {e.get("image", {}).get("url", "").removeprefix("attachment://") for e in answer.get("embeds", [])}
    when = datetime.fromisoformat(answer["timestamp"]).strftime("%d/%m/%Y %H:%M")
    author = asked["author"]
    member = (
        f'<div class="msg">{avatar(author)}<div><span class="name">{html.escape(author["username"])}</span>'
        f'<span class="time">{when}</span></div><div>{markdown(asked["content"])}</div></div>'
    )
    reply = ""
    if answer.get("message_reference"):
        reply = (
            f'<div class="reply"><span class="mini" style="background:#ed4245"></span>'
            f'<span class="who">@{html.escape(author["username"])}</span>{markdown(asked["content"])}</div>'
        )
    # Discord's order under a message: files, then embeds, then buttons.
    body = "".join(attachment_html(a, used) for a in answer["attachments"])
    body += "".join(embed_html(e, images) for e in answer.get("embeds", []))
    body += buttons_html(answer.get("components", []))
    content = f"<div>{markdown(answer['content'])}</div>" if answer.get("content") else ""
    bot = (
        f'<div class="msg">{reply}{avatar(answer["author"])}<div><span class="name">'
        f'{html.escape(answer["author"]["username"])}</span><span class="app">APP</span>'
        f'<span class="time">{when}</span></div>{content}{body}</div>'
    )
    note = (
        '<div class="note">Rendered from the message payload the bot sent for '
        f"<code>{html.escape(asked['content'])}</code>; not a screenshot of Discord.</div>"
    )
    top = '<div class="top"><span class="hash">#</span>music</div>'
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><style>{CSS % {"width": WIDTH}}</style></head>'
        f'<body><div class="channel">{top}{member}{bot}{note}</div></body></html>'
    )


# -- rendering ---------------------------------------------------------------------------------


def screenshot(html_text: str, out: Path, chromium: str) -> None:
    """Render ``html_text`` with headless Chromium, crop the empty bottom, keep it under MAX_BYTES."""
    with tempfile.TemporaryDirectory() as tmp:
        page_path = Path(tmp) / "message.html"
        page_path.write_text(html_text, encoding="utf-8")
        shot = Path(tmp) / "shot.png"
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
                f"--screenshot={shot}",
                f"--window-size={WIDTH},2400",
                page_path.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        image = Image.open(shot).convert("RGB")
    background = Image.new("RGB", image.size, (0x31, 0x33, 0x38))
    box = ImageChops.difference(image, background).getbbox()
    bottom = min(image.height, (box[3] if box else image.height) + 16)
    image = image.crop((0, 0, image.width, bottom))
    data = io.BytesIO()
    image.save(data, "PNG", optimize=True)
    if data.tell() > MAX_BYTES:  # a palette keeps text sharp and the file small
        data = io.BytesIO()
        image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(data, "PNG", optimize=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data.getvalue())


def main() -> None:
    """Capture, lay out, render."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--command", default="!compose 300", help="what the member sends")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bot-message.png")
    parser.add_argument("--html", type=Path, help="also write the HTML here")
    parser.add_argument("--payload", type=Path, help="also write the captured payload here (JSON)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asked, answer, files = asyncio.run(capture(args.command, Path(tmp)))
    if args.payload:
        args.payload.write_text(json.dumps(answer, indent=2, ensure_ascii=False), encoding="utf-8")
    text = page(asked, answer, files)
    if args.html:
        args.html.write_text(text, encoding="utf-8")
    screenshot(text, args.out, args.chromium)
    print(f"{args.out}: {args.out.stat().st_size / 1000:.0f} KB, from {args.command!r}")


if __name__ == "__main__":
    main()
