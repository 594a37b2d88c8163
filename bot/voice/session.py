"""One server's voice session: the connection, what is queued, the radio's steering, what plays now.

The music itself comes from :class:`composer.render.live.LiveStream`, which asks
:meth:`VoiceSession.next_piece` for each piece from its own thread, one piece ahead. That method
hands the composing to the event loop (the composer is asyncio-facing) and waits for it there,
in the stream's thread, never in the loop. The stream tells the session when a piece starts
playing, and discord.py's player thread tells it when the stream has ended; both only schedule
work on the loop. So the loop never waits for audio, and audio never waits for the loop.
"""

from __future__ import annotations

import asyncio
import logging
import math
import shutil
import tempfile
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import discord

from bot.failures import Refusal, explain
from bot.options import format_options, request_options
from bot.pieces import Job, answer
from bot.requests.embeds import quoted
from bot.voice.buttons import radio_view
from bot.voice.source import LiveSource
from composer.render.audio import find_soundfont
from composer.render.live import Cue, LiveStream
from composer.service import ComposeRequest, Composition

if TYPE_CHECKING:
    from bot.app import CadenzaBot
    from composer.queue.remote import RemoteComposer
    from composer.service import Composer

log = logging.getLogger(__name__)

CALMER, LIVELIER = 0.8, 1.25
"""How much each press of Calmer and Livelier changes the radio's tempo."""
_COMPOSE_TIMEOUT = 120.0


@dataclass(frozen=True)
class Queued:
    """A piece someone asked for with ``/play``, waiting to be composed and played."""

    request: ComposeRequest
    user: discord.abc.User
    channel: discord.abc.Messageable
    upload_limit: int
    post: bool = True
    """Whether to post the piece's message when it starts (a song request has been posted already)."""


@dataclass(frozen=True)
class Playing:
    """A composed piece in the stream: what made it, who asked, where its files are."""

    request: ComposeRequest
    """The request with the piece's seed: composing it again makes the same piece."""
    piece: Composition
    folder: Path
    queued: Queued | None = None
    """The ``/play`` request it answers; None for a radio piece."""


@dataclass
class Radio:
    """Endless music: the options read from the listeners' words, and how they were steered since."""

    values: dict[str, object]
    words: str
    styles: tuple[str, ...]
    tempo_factor: float = 1.0
    style: str | None = None
    """A style chosen with the Another style button, over the words' own."""

    def request(self, length: int, default_tempo: float) -> ComposeRequest:
        """The next radio piece's request (a new seed each time)."""
        values = {name: value for name, value in self.values.items() if name not in ("seed", "length")}
        tempo = float(values.pop("tempo", default_tempo)) * self.tempo_factor
        values["tempo"] = round(min(300.0, max(20.0, tempo)))
        if self.style is not None:
            values["style"] = self.style
        return ComposeRequest(
            length=int(self.values.get("length", length)), audio=False, picture=False, **values
        )

    def next_style(self) -> str:
        """The style after the current one, in the model's order."""
        current = self.style or str(self.values.get("style") or self.styles[0])
        position = self.styles.index(current) if current in self.styles else -1
        self.style = self.styles[(position + 1) % len(self.styles)]
        return self.style


async def compose_in(
    composer: Composer | RemoteComposer, request: ComposeRequest, folder: Path
) -> Composition:
    """Compose into ``folder``; on failure or cancellation the folder is removed, but only once the
    composer's thread is done writing into it."""

    def drop(task: asyncio.Future) -> None:
        if not task.cancelled():
            task.exception()  # seen here, so asyncio does not report it as never retrieved
        shutil.rmtree(folder, ignore_errors=True)

    task = asyncio.ensure_future(composer.compose(request, folder))
    try:
        return await asyncio.shield(task)
    except BaseException:
        task.add_done_callback(drop)
        raise


@dataclass
class Votes:
    """Skip votes for the piece playing now."""

    voters: set[int] = field(default_factory=set)

    @staticmethod
    def needed(listeners: int) -> int:
        """Alone or in two, one vote skips; more listeners need a majority."""
        return 1 if listeners <= 2 else math.floor(listeners / 2) + 1


class VoiceSession:
    """The bot's presence in one server's voice channel, from join to leave."""

    def __init__(self, bot: CadenzaBot, voice: discord.VoiceProtocol, text: discord.abc.Messageable) -> None:
        self.bot = bot
        self.voice = voice
        self.text = text
        """Where now-playing messages and the pieces of ``/play`` go."""
        self.loop = asyncio.get_running_loop()
        self.queue: deque[Queued] = deque()
        self.radio: Radio | None = None
        self.stream: LiveStream | None = None
        self.now: Playing | None = None
        self.next_up: Queued | None = None
        """A ``/play`` request taken from the queue and being composed or rendered, to play next."""
        self.votes = Votes()
        self.radio_message: discord.Message | None = None
        self.closed = False
        self._lock = threading.Lock()
        self._idle: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._folders: set[Path] = set()
        self._root = bot.settings.data_dir / "voice"

    @property
    def guild(self) -> discord.Guild:
        return self.voice.channel.guild

    @property
    def channel(self) -> discord.VoiceChannel:
        return self.voice.channel

    def listeners(self) -> list[discord.Member]:
        """The people in the bot's voice channel (bots do not count)."""
        return [member for member in self.channel.members if not member.bot]

    @property
    def playing(self) -> bool:
        return self.voice.is_playing()

    # -- what people ask for -------------------------------------------------------------------

    async def play(self, queued: Queued) -> int:
        """Queue a piece; returns how many pieces are before it (0: it is next, or plays at once)."""
        with self._lock:
            self.queue.append(queued)
            ahead = len(self.queue) - 1 + (self.now is not None) + (self.next_up is not None)
        self._refresh()  # the stream may have been told there was nothing more, or a radio piece
        await self.start()
        return ahead

    async def start_radio(self, radio: Radio) -> None:
        """Endless music from now on; a piece in the stream already plays to its end first."""
        self.radio = radio
        self._refresh()
        await self.start()

    async def steer(self, change: str) -> str:
        """Calmer, livelier or another style for the radio's next piece; returns what changed."""
        radio = self._radio()
        if change == "calmer":
            radio.tempo_factor *= CALMER
            said = "calmer"
        elif change == "livelier":
            radio.tempo_factor *= LIVELIER
            said = "livelier"
        else:
            said = f"in the style {radio.next_style()}"
        self._refresh()
        return said

    def _refresh(self) -> None:
        """Have the stream ask again for the piece after this one, unless that is a ``/play``
        request, which keeps its turn (``next_up`` is set from when it leaves the queue until it
        plays); a radio piece composed ahead is dropped with its files."""
        if self.stream is None or self.next_up is not None:
            return
        dropped = self.stream.refresh_upcoming()
        if dropped is not None:
            self._forget(dropped.tag.folder)

    def skip(self, member: discord.abc.User) -> tuple[bool, int, int]:
        """A skip vote from ``member``; returns whether the piece was skipped, the votes and the votes needed.

        The member who asked for the piece, and members who may move others in voice, skip at once.
        """
        if self.now is None or self.stream is None:
            raise Refusal("Nothing is playing.")
        needed = Votes.needed(len(self.listeners()))
        asked = self.now.queued is not None and self.now.queued.user.id == member.id
        permissions = self.channel.permissions_for(member) if isinstance(member, discord.Member) else None
        if asked or (permissions is not None and permissions.move_members):
            needed = 1
        self.votes.voters.add(member.id)
        votes = len(self.votes.voters)
        if votes >= needed:
            self.stream.skip()
            return True, votes, needed
        return False, votes, needed

    async def stop(self) -> None:
        """Stop the music and forget the queue and the radio; the bot stays until it is idle."""
        with self._lock:
            self.queue.clear()
            self.next_up = None
        self.radio = None
        stream, self.stream = self.stream, None
        if stream is not None:
            # In a thread: closing waits for the stream's threads, which may wait for the loop.
            await asyncio.to_thread(stream.close)
        self.voice.stop()
        if self.now is not None:
            self._forget(self.now.folder)
            self.now = None
        self.check_idle()

    async def leave(self) -> None:
        """Stop and disconnect; the session is over."""
        if self.closed:
            return
        await self.stop()
        self.closed = True
        if self._idle is not None:
            self._idle.cancel()
        for task in list(self._tasks):
            task.cancel()
        await self.voice.disconnect(force=True)
        for folder in list(self._folders):
            shutil.rmtree(folder, ignore_errors=True)
        self._folders.clear()
        log.info("left voice in %s (%d)", self.guild, self.guild.id)

    def _radio(self) -> Radio:
        if self.radio is None:
            raise Refusal(f"The radio is off; `{self.bot.settings.prefix}radio` starts it.")
        return self.radio

    # -- the music -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start a stream when nothing plays and there is something to play."""
        if self.closed or self.stream is not None or (not self.queue and self.radio is None):
            return
        soundfont = find_soundfont(self.bot.composer.settings.soundfont)
        if soundfont is None:
            raise Refusal("I can't play music here: this bot has no SoundFont to play it with.")
        self.cancel_idle()
        stream = LiveStream(
            self.next_piece,
            soundfont,
            buffer_seconds=self.bot.settings.voice_buffer_seconds,
            on_start=lambda cue: self.loop.call_soon_threadsafe(self._started, cue.tag),
        )
        self.stream = stream.start()
        if not await asyncio.to_thread(stream.wait_ready, _COMPOSE_TIMEOUT) or stream.ended:
            await asyncio.to_thread(stream.close)  # its threads may wait for the loop
            if self.stream is stream:
                self.stream = None
            self.check_idle()
            return
        if self.closed or self.stream is not stream:
            await asyncio.to_thread(stream.close)
            return
        self.voice.play(
            LiveSource(stream), after=lambda error: self.loop.call_soon_threadsafe(self._ended, stream, error)
        )

    def next_piece(self) -> Cue | None:
        """The next piece to play, composed (called in the stream's thread); None when there is none."""
        while not self.closed:
            with self._lock:
                queued = self.queue.popleft() if self.queue else None
                if queued is not None:
                    self.next_up = queued
            if queued is not None:
                request = replace(queued.request, audio=False, picture=False)
            elif self.radio is not None:
                model = self.bot.composer.load()
                style = self.radio.style or str(self.radio.values.get("style") or model.vocabulary.styles[0])
                request = self.radio.request(self.bot.settings.radio_length, model.tempo_for(style))
            else:
                return None
            future = asyncio.run_coroutine_threadsafe(self._compose(request, queued), self.loop)
            try:
                playing = future.result(_COMPOSE_TIMEOUT)
            except Exception as error:
                future.cancel()
                with self._lock:
                    if queued is not None and self.next_up is queued:
                        self.next_up = None
                self._report(error, queued)
                if queued is None:  # the radio's own settings fail: stop it rather than loop
                    self.radio = None
                continue
            return Cue(playing.piece.midi, playing)
        return None

    async def _compose(self, request: ComposeRequest, queued: Queued | None) -> Playing:
        self._root.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{self.guild.id}-", dir=self._root))
        self._folders.add(folder)
        try:
            piece = await compose_in(self.bot.composer, request, folder)
        except BaseException:
            self._folders.discard(folder)
            raise
        log.info("composed %s for voice in %s in %.1f s", piece.midi.name, self.guild, piece.timings["total"])
        return Playing(replace(request, seed=piece.seed), piece, folder, queued)

    def _report(self, error: BaseException, queued: Queued | None) -> None:
        """Say in the text channel that a piece could not be made (from the stream's thread)."""
        user = queued.user if queued is not None else self.bot.user
        text = explain(error, what="a piece for voice", user=user, channel=self.text)
        channel = queued.channel if queued is not None else self.text
        asyncio.run_coroutine_threadsafe(channel.send(f"⚠️ {text}"), self.loop)

    def _started(self, playing: Playing) -> None:
        """A piece's first frame was read: it plays now (on the loop)."""
        previous, self.now = self.now, playing
        with self._lock:
            if self.next_up is playing.queued:
                self.next_up = None
        self.votes = Votes()
        if previous is not None:
            self._forget(previous.folder)
        if playing.queued is not None:
            if playing.queued.post:
                self._spawn(self._post_piece(playing))
        elif self.radio is not None:
            self._spawn(self._show_radio(playing))

    def _ended(self, stream: LiveStream, error: BaseException | None) -> None:
        """The player stopped (the stream ran out, was stopped, or failed): on the loop."""
        if error is not None:
            log.error("voice player in %s stopped: %s", self.guild, error)
        self._spawn(asyncio.to_thread(stream.close))
        if self.stream is not stream:
            return  # an earlier stream, stopped on purpose
        self.stream = None
        if self.now is not None:
            self._forget(self.now.folder)
            self.now = None
        if not self.closed:
            self._spawn(self.start())
            self.check_idle()

    def _forget(self, folder: Path) -> None:
        self._folders.discard(folder)
        shutil.rmtree(folder, ignore_errors=True)

    def _spawn(self, work: object) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("voice task failed in %s", self.guild, exc_info=task.exception())

    # -- messages ------------------------------------------------------------------------------

    async def _post_piece(self, playing: Playing) -> None:
        """The usual message for a ``/play`` piece, with its MIDI, audio and picture.

        The stream played it from a MIDI file alone, to start at once; the same request and
        seed compose the identical piece again, this time with the audio file and the picture.
        """
        queued = playing.queued
        folder = Path(tempfile.mkdtemp(prefix="post-", dir=self._root))
        request = replace(playing.request, audio=True, picture=True)
        piece = await compose_in(self.bot.composer, request, folder)
        try:
            job = Job(request, queued.user, queued.channel, queued.upload_limit)
            message = await answer(job, piece, self.bot.settings.prefix)
            await queued.channel.send(files=message.pop("attachments"), **message)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def now_playing_embed(self, playing: Playing) -> discord.Embed:
        """What plays now, how the radio is steered and who is listening."""
        piece = playing.piece
        minutes, seconds = divmod(round(piece.seconds), 60)
        embed = discord.Embed(
            title=f"📻 Cadenza radio in {self.channel.name}",
            description=f"Now playing: {piece.style} in {piece.key} at {piece.tempo:g} bpm, "
            f"{minutes}:{seconds:02d}, seed {piece.seed}.",
            colour=discord.Colour.blurple(),
        )
        if self.radio is not None:
            embed.add_field(
                name="Asked for", value=quoted(self.radio.words, 200) if self.radio.words else "anything"
            )
            embed.add_field(name="Tempo", value=f"×{self.radio.tempo_factor:.2f}")
            if self.radio.style:
                embed.add_field(name="Style", value=self.radio.style)
        embed.add_field(name="Listening", value=str(len(self.listeners())))
        embed.set_footer(
            text="Skip (a vote when several listen) · Calmer · Livelier · Another style · Keep this one"
        )
        return embed

    async def _show_radio(self, playing: Playing) -> None:
        """Post the now-playing message, or edit it for the new piece."""
        content = {
            "embed": self.now_playing_embed(playing),
            "view": radio_view(format_options(request_options(playing.request))),
        }
        if self.radio_message is not None:
            try:
                await self.radio_message.edit(**content)
                return
            except discord.NotFound:
                pass
        self.radio_message = await self.text.send(**content)

    def describe(self) -> discord.Embed:
        """The voice queue for ``queue``: what plays now and what comes next."""
        lines = []
        if self.now is not None:
            piece = self.now.piece
            who = self.now.queued.user.mention if self.now.queued else "the radio"
            lines.append(f"▶️ Now: {piece.key} at {piece.tempo:g} bpm, seed {piece.seed}, for {who}")
        with self._lock:
            waiting = [queued for queued in (self.next_up, *self.queue) if queued is not None]
        for place, queued in enumerate(waiting, start=1):
            options = format_options(request_options(queued.request))
            lines.append(f"**{place}.** {queued.user.mention}: `{options}`")
        if self.radio is not None:
            lines.append(
                f"📻 Then the radio: {quoted(self.radio.words, 200) if self.radio.words else 'anything'}"
            )
        return discord.Embed(
            title=f"🔊 Playing in {self.channel.name}",
            description="\n".join(lines) or "Nothing is playing.",
            colour=discord.Colour.blurple(),
        )

    # -- leaving when idle -----------------------------------------------------------------------

    def check_idle(self) -> None:
        """Leave after ``BOT_VOICE_IDLE_SECONDS`` with nobody listening or nothing to play."""
        idle = not self.listeners() or (self.stream is None and not self.queue and self.radio is None)
        if not idle:
            self.cancel_idle()
        elif self._idle is None and not self.closed:
            self._idle = asyncio.create_task(self._leave_when_idle(), name="cadenza-voice-idle")

    def cancel_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    async def _leave_when_idle(self) -> None:
        await asyncio.sleep(self.bot.settings.voice_idle_seconds)
        self._idle = None
        if not self.listeners() or (self.stream is None and not self.queue and self.radio is None):
            await self.bot.get_cog("Voice").end(self)
