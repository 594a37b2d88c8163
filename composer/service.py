"""The composer as a service: a request in, a finished piece (MIDI, audio, picture) out.

:class:`Composer` loads the model once, lazily, and does the work in its own thread pool:
``await composer.compose(request, out_dir)`` for asyncio callers such as the bot, and
``composer.compose_sync(request, out_dir)`` for everyone else. All files of a piece are written
in a scratch folder and moved into place only when every stage has succeeded.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from composer.errors import InvalidOptionError
from composer.events import TICKS_PER_QUARTER, Event, Note, Score, events_from_notes
from composer.generation.batcher import Batcher
from composer.generation.critic import Critic, candidate_count, choose
from composer.generation.generate import Generated, PieceRequest
from composer.generation.sampling import DEFAULT_TEMPERATURE, DEFAULT_TOP_P, SamplingOptions
from composer.generation.steering import Texture, fill_chords, fit_register, steering, texture_of
from composer.harmonize import HARMONY_TEMPERATURE, harmonize
from composer.harmonize.melody import parse_melody_text, read_melody_file
from composer.keys import Key, detect_key, parse_key, settle_key, shift_between
from composer.midi import arrange
from composer.midi.notes import program_name
from composer.midi.read import ReadLimits, read_score
from composer.midi.smf import MidiFile
from composer.midi.timeline import Timeline
from composer.midi.write import RESOLUTION, parts_midi, write_midi_file
from composer.model import artifact as artifacts
from composer.model.stepper import Stepper
from composer.render.audio import AudioInfo, AudioUnavailable, find_soundfont, render_audio
from composer.render.pianoroll import draw_piano_roll
from composer.settings import ComposerSettings

log = logging.getLogger(__name__)

MAX_LENGTH = 2000
SEED_LIMIT = 2**32


@dataclass(frozen=True)
class ComposeRequest:
    """What to compose. With ``primer`` set, the piece continues that MIDI/MusicXML/ABC file."""

    length: int = 500
    seed: int | None = None
    temperature: float | None = None
    """None: the model's own sampling for the style (:meth:`sampling_for`), else 0.8."""
    top_k: int = 0
    top_p: float | None = None
    """None: as with ``temperature``; 0.9 where the temperature is given."""
    tempo: float | None = None
    key: str | None = None
    transpose: int = 0
    instrument: str | int | None = None
    style: str | None = None
    primer: bytes | Path | None = field(default=None, repr=False)
    primer_name: str = ""
    new_part_only: bool = False
    audio: bool = True
    picture: bool = True
    melody: str | None = None
    """A melody to harmonize, typed as ABC or note names (``C4 D E F G2 A G``)."""
    voices: int = 4
    """Parts of a harmonization, the melody included: 2 to 4."""
    harmonize: bool = False
    """Harmonize the melody of ``primer`` (its top line) instead of continuing it."""

    @property
    def harmonizing(self) -> bool:
        """Whether this request harmonizes a melody (typed or in ``primer``)."""
        return self.harmonize or self.melody is not None

    def __post_init__(self) -> None:
        if self.harmonizing:
            self._check_harmonization()
        if isinstance(self.length, bool) or not isinstance(self.length, int | np.integer):
            raise InvalidOptionError(
                f"The length must be a whole number of notes and chords from 1 to {MAX_LENGTH}."
            )
        if not 1 <= self.length <= MAX_LENGTH:
            raise InvalidOptionError(
                f"The length must be from 1 to {MAX_LENGTH} notes and chords, not {self.length}."
            )
        if self.seed is not None and not 0 <= self.seed < SEED_LIMIT:
            raise InvalidOptionError(f"The seed must be a whole number from 0 to {SEED_LIMIT - 1}.")
        if self.tempo is not None and not 20 <= self.tempo <= 300:
            raise InvalidOptionError(f"The tempo must be from 20 to 300 beats a minute, not {self.tempo:g}.")
        if not -24 <= self.transpose <= 24:
            raise InvalidOptionError(f"Transpose by at most 24 semitones either way, not {self.transpose}.")
        if self.key is not None:
            parse_key(self.key)
        if self.key is not None and self.primer is not None:
            raise InvalidOptionError(
                "A continuation keeps the key of your piece; use transpose instead of key."
            )
        if self.new_part_only and self.primer is None:
            raise InvalidOptionError("new_part_only only applies to a continuation.")
        self.sampling  # noqa: B018 - validates temperature, top_k and top_p now

    def _check_harmonization(self) -> None:
        """The options that make no sense for a harmonization, refused with a reason."""
        from composer.harmonize import check_voices
        from composer.harmonize.melody import EXAMPLE

        check_voices(self.voices)
        if self.melody is not None and self.primer is not None:
            raise InvalidOptionError("Send the melody as text or as a file, not both.")
        if self.melody is None and self.primer is None:
            raise InvalidOptionError(f"Send a melody to harmonize, like {EXAMPLE}.")
        if self.key is not None:
            raise InvalidOptionError(
                "A harmonization keeps the key of your melody; use transpose instead of key."
            )
        if self.new_part_only:
            raise InvalidOptionError("new_part_only only applies to a continuation.")

    @property
    def sampling(self) -> SamplingOptions:
        """The sampling options this request asks for, the composer's defaults for those it leaves out."""
        return SamplingOptions(
            DEFAULT_TEMPERATURE if self.temperature is None else self.temperature,
            self.top_k,
            DEFAULT_TOP_P if self.top_p is None else self.top_p,
        )

    def sampling_for(self, style_default: SamplingOptions | None) -> SamplingOptions:
        """The sampling to use: a request that gives no temperature, top-k or top-p gets
        ``style_default`` (the model's measured best for the style's new pieces) where there is
        one; a request that gives any of them samples as asked."""
        unset = self.temperature is None and self.top_k == 0 and self.top_p is None
        return style_default if style_default is not None and unset else self.sampling


@dataclass(frozen=True)
class Composition:
    """A finished piece: where its files are and everything needed to make it again."""

    midi: Path
    audio: Path | None
    picture: Path | None
    seed: int
    events: int
    """Notes and chords (onsets) of the new part."""
    primer_events: int
    seconds: float
    key: str
    tempo: float
    program: int
    style: str
    ended_naturally: bool
    mapped_values: int
    timings: dict[str, float]
    warnings: tuple[str, ...] = ()
    notes: int = 0
    """Notes of the new part in all (a four-note chord counts four)."""
    log_likelihood: float = 0.0
    """The network's log-probability of the new part, per event: the kept candidate's."""
    length: int = 0
    """The length asked for (the piece ends near it, on the network's own ending)."""
    voices: int = 0
    """Parts of a harmonization, the melody included (0: not a harmonization)."""

    @property
    def settings(self) -> dict[str, str]:
        """The settings that reproduce this piece, for display."""
        size = {"voices": str(self.voices)} if self.voices else {"length": str(self.length or self.events)}
        return {
            **size,
            "seed": str(self.seed),
            "key": self.key,
            "tempo": f"{self.tempo:g}",
            "instrument": f"{program_name(self.program)} ({self.program})".lstrip(),
            "style": self.style,
        }


def resolve_program(instrument: str | int | None, default: int = 0) -> int:
    """A General MIDI program from a number (0-127) or an instrument name music21 knows."""
    if instrument is None or instrument == "":
        return default
    if isinstance(instrument, int) or str(instrument).strip().isdigit():
        program = int(instrument)
        if not 0 <= program <= 127:
            raise InvalidOptionError(f"Instrument numbers are General MIDI programs 0-127, not {program}.")
        return program
    from music21 import instrument as m21instrument

    try:
        found = m21instrument.fromString(str(instrument))
    except m21instrument.InstrumentException:
        found = None
    if found is None or found.midiProgram is None:
        raise InvalidOptionError(
            f"I don't know the instrument '{instrument}'; try piano, violin, flute, guitar or a number 0-127."
        )
    return int(found.midiProgram)


@dataclass
class _Plan:
    """A request on its way: checked, primer read, generation started in the batcher."""

    request: ComposeRequest
    seed: int
    style: str
    source: Score | None
    primer_events: list[Event]
    wanted_key: Key | None
    mapped_values: int
    warnings: list[str]
    timings: dict[str, float]
    candidates: list[Future[Generated]]
    """The piece's candidates in the batcher; :meth:`choose` keeps one."""
    critic: Critic | None
    texture: Texture | None
    """The end of the piece a continuation continues (None for a new piece)."""
    drawn_key: Key | None
    """The key a new piece drew, where its candidates drew keys of their own (else None): the
    critic keeps one that came out in its mode, and the piece is settled in the kept one's key."""
    submitted: float
    """When generation began, the primer read (``time.perf_counter``)."""

    def note_generated(self) -> None:
        """Record how long generation took, waiting for the batch included."""
        self.timings["generate"] = round(time.perf_counter() - self.submitted, 3)


class _Stopwatch:
    """Times the stages of a piece into ``timings``: each lap is the time since the last one."""

    def __init__(self, timings: dict[str, float] | None = None) -> None:
        self.timings = {} if timings is None else timings
        self.clock = time.perf_counter()

    def lap(self, stage: str) -> None:
        """Record the time since the last lap as ``stage``."""
        now = time.perf_counter()
        self.timings[stage] = round(now - self.clock, 3)
        self.clock = now


class Composer:
    """Composes pieces with one model, in a pool of worker threads."""

    def __init__(self, settings: ComposerSettings | None = None, workers: int | None = None) -> None:
        self.settings = settings or ComposerSettings()
        self._pool = ThreadPoolExecutor(workers or self.settings.workers, thread_name_prefix="composer")
        self._audio_pool = ThreadPoolExecutor(workers or self.settings.workers, thread_name_prefix="audio")
        self._lock = threading.Lock()
        self._artifact: artifacts.Artifact | None = None
        self._batcher: Batcher | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def load(self) -> artifacts.Artifact:
        """Load the model now (it is otherwise loaded by the first piece)."""
        with self._lock:
            if self._artifact is None:
                loaded = artifacts.load(self.settings.model)
                # One BLAS thread: a batched step is small, and two threads that share a busy CPU
                # (FluidSynth, other pieces) spin on each other: 6 ms a step instead of 0.4 ms.
                threadpool_limits(1, user_api="blas")
                self._batcher = Batcher(Stepper(loaded.config, loaded.weights), self.settings.batch)
                self._artifact = loaded
        return self._artifact

    @property
    def largest_batch(self) -> int:
        """The most pieces that have been generated together so far (0 before the first)."""
        return self._batcher.largest_batch if self._batcher is not None else 0

    def close(self) -> None:
        """Stop the worker threads once running pieces are done."""
        self._pool.shutdown(wait=True)
        self._audio_pool.shutdown(wait=True)
        if self._batcher is not None:
            self._batcher.close()

    async def compose(self, request: ComposeRequest, out_dir: str | Path) -> Composition:
        """Compose without blocking the event loop.

        Reading the primer and writing the files run in the worker pool (at most ``workers`` at
        a time); in between, the piece waits for the batcher without holding a worker, so every
        request in flight is generated in the same network steps.
        """
        loop = asyncio.get_running_loop()
        if request.harmonizing:
            return await loop.run_in_executor(self._pool, self._harmonize, request, Path(out_dir))
        plan = await loop.run_in_executor(self._pool, self._plan, request)
        results = await asyncio.gather(*map(asyncio.wrap_future, plan.candidates))
        plan.note_generated()
        return await loop.run_in_executor(self._pool, self._finish, plan, results, Path(out_dir))

    # -- the work ------------------------------------------------------------------------------

    def limits(self) -> ReadLimits:
        """The input limits from the settings."""
        s = self.settings
        return ReadLimits(
            max_bytes=s.max_input_bytes,
            max_notes=s.max_input_notes,
            max_quarters=s.max_input_quarters,
            parse_seconds=s.parse_seconds,
            parse_memory_mb=s.parse_memory_mb,
        )

    def compose_sync(self, request: ComposeRequest, out_dir: str | Path) -> Composition:
        """Compose one piece and write its files into ``out_dir``; returns what was written."""
        if request.harmonizing:
            return self._harmonize(request, Path(out_dir))
        plan = self._plan(request)
        results = [candidate.result() for candidate in plan.candidates]
        plan.note_generated()
        return self._finish(plan, results, Path(out_dir))

    def _plan(self, request: ComposeRequest) -> _Plan:
        """Check the request, read its primer and start its generation in the batcher."""
        watch = _Stopwatch()
        lap = watch.lap
        model = self.load()
        lap("model")
        vocabulary = model.vocabulary
        seed = request.seed if request.seed is not None else secrets.randbelow(SEED_LIMIT)
        style = _style(request, vocabulary.styles)
        warnings: list[str] = []

        source: Score | None = None
        if request.primer is not None:
            source = read_score(request.primer, self.limits(), name=request.primer_name)
            if source.dropped_drum_notes:
                warnings.append(
                    f"The {source.dropped_drum_notes} drum notes of your piece stay as they are; "
                    "the new part has no drums."
                )
            lap("read")
        primer_events = events_from_notes(source.notes) if source else []
        wanted_key = parse_key(request.key) if request.key else None
        if wanted_key is not None:
            primer_events = [Event(wanted_key.tonic_chord(), 2 * TICKS_PER_QUARTER, 2 * TICKS_PER_QUARTER, 4)]
        encoded = vocabulary.encode(primer_events, start=True, end=False)
        fixed = {}
        if model.config.arch == "seed":  # the seed network plays every note as an eighth note
            fixed = vocabulary.steady_rhythm(TICKS_PER_QUARTER // 2)
        guide = model.key_guide(style, seed, wanted_key) if source is None else {}
        if wanted_key is not None:
            guide.pop("opening", None)  # the key's tonic chord is the primer already
        texture = texture_of(primer_events) if source is not None and primer_events else None
        steer = None
        if texture is not None and self.settings.continuation_steering > 0:
            steer = steering(vocabulary, texture, self.settings.continuation_steering)
        piece = PieceRequest(
            length=request.length,
            seed=seed,
            style=vocabulary.style_id(style),
            # A new piece samples as measured best for its style; a continuation as asked.
            sampling=request.sampling_for(model.sampling_for(style) if source is None else None),
            primer=encoded.rows,
            fixed=fixed,
            steering=steer,
            outlines=vocabulary.outlines,
            **guide,  # a new piece is steered into the key it will be in
        )
        # A new piece's critic chooses among its own number of candidates; a continuation's
        # candidates are steered towards its piece, and the one nearest it is kept.
        if source is None:
            critic = model.critic_for(style)
            count = candidate_count(critic, request.length, self.settings.candidates)
        else:  # kept for the piece's key and texture (see _finish)
            critic, count = None, self.settings.candidates or self.settings.continuation_candidates
        own_keys = critic is not None and critic.own_keys and wanted_key is None
        candidates = self._batcher.submit_all(
            [
                replace(piece, candidate=c, **(model.key_guide(style, seed, None, c) if own_keys else {}))
                for c in range(count)
            ]
        )
        return _Plan(
            request,
            seed,
            style,
            source,
            primer_events,
            wanted_key,
            encoded.unknown,
            warnings,
            watch.timings,
            candidates,
            critic,
            texture,
            model.drawn_key(style, seed) if own_keys else None,
            watch.clock,  # generating counts encoding the primer and feeding it
        )

    def _finish(self, plan: _Plan, results: Sequence[Generated], out_dir: Path) -> Composition:
        """Keep one candidate (:func:`composer.generation.critic.choose`) and turn its rows into
        the piece's files: arrangement, MIDI, picture, audio."""
        request, seed, style, source = plan.request, plan.seed, plan.style, plan.source
        primer_events, wanted_key, warnings = plan.primer_events, plan.wanted_key, plan.warnings
        timings = plan.timings
        vocabulary = self.load().vocabulary
        watch = _Stopwatch(timings)
        lap = watch.lap
        texture = plan.texture
        result = choose(results, plan.critic, vocabulary, texture, plan.drawn_key)
        lap("choose")
        new_events = [vocabulary.decode_event(row) for row in result.rows]
        if not result.ended_naturally and new_events:
            new_events[-1] = _ring_out(new_events[-1])
        if texture is not None:  # its bass and top line in the piece's octaves, its chords as full
            new_events = fill_chords(fit_register(new_events, texture), texture)

        if wanted_key is not None:
            new_events = primer_events + new_events
            shift = shift_between(detect_key(new_events), wanted_key) + request.transpose
        else:
            if source is None:  # a new piece: in a key the style's music is often in
                keys = self.load().keys_for(style)
                candidate = result.candidate if plan.drawn_key is not None else 0
                new_events = settle_key(new_events, keys, seed, candidate)
            shift = request.transpose
        new_events = [e.transposed(shift) for e in new_events] if shift else new_events
        key = wanted_key or detect_key(new_events if source is None else primer_events + new_events)

        if source is None:
            program = resolve_program(request.instrument)
            tempo = float(request.tempo or self.load().tempo_for(style))
            output = arrange.new_piece(
                new_events, tempo=tempo, key=key, program=program, title=f"Cadenza · {key} · seed {seed}"
            )
        else:
            asked = resolve_program(request.instrument) if request.instrument not in (None, "") else None
            output = arrange.continuation(
                source,
                primer_events,
                new_events,
                program=asked,
                tempo=request.tempo,
                new_part_only=request.new_part_only,
            )
        lap("arrange")

        stem = f"cadenza-{seed}" if source is None else f"continuation-{seed}"
        title = f"Cadenza · {key} · seed {seed}"
        made = self._write(
            out_dir,
            stem,
            output.midi,
            request,
            warnings,
            watch,
            lambda path: draw_piano_roll(
                output.notes, path, timeline=output.timeline, new_from=output.new_from, title=title
            ),
        )
        return Composition(
            midi=made["midi"],
            audio=made.get("audio"),
            picture=made.get("picture"),
            seed=seed,
            events=len(new_events) - (1 if wanted_key is not None else 0),
            primer_events=len(primer_events) if source else 0,
            seconds=round(output.seconds, 2),
            key=str(key),
            tempo=round(output.tempo, 2),
            program=output.program,
            style=style,
            ended_naturally=result.ended_naturally,
            mapped_values=plan.mapped_values,
            timings=timings,
            warnings=tuple(warnings),
            notes=sum(len(e.pitches) for e in new_events),
            log_likelihood=round(result.log_likelihood, 4),
            length=request.length,
        )

    def _harmonize(self, request: ComposeRequest, out_dir: Path) -> Composition:
        """Harmonize the request's melody and write its files: MIDI (a track per part), picture, audio."""
        watch = _Stopwatch()
        lap = watch.lap
        model = self.load()
        lap("model")
        seed = request.seed if request.seed is not None else secrets.randbelow(SEED_LIMIT)
        style = _style(request, model.vocabulary.styles)
        if request.melody is not None:
            melody = parse_melody_text(request.melody, self.limits())
        else:
            melody = read_melody_file(request.primer, request.primer_name, self.limits())
        lap("read")
        result = harmonize(
            self._batcher.stepper,
            model.vocabulary,
            melody,
            voices=request.voices,
            style=model.vocabulary.style_id(style),
            seed=seed,
            temperature=HARMONY_TEMPERATURE if request.temperature is None else request.temperature,
            candidates=self.settings.harmony_candidates,
        )
        lap("generate")
        shift = request.transpose
        key = Key((result.key.tonic + shift) % 12, result.key.minor)
        start = min(n.onset for n in result.melody)
        loudness = (92, *([72] * len(result.voices)))
        parts = [
            (name, [Note(n.pitch + shift, n.onset - start, n.end - start, level, i) for n in part])
            for i, (name, part, level) in enumerate(zip(result.names, result.parts, loudness, strict=True))
        ]
        tempo = float(request.tempo or melody.tempo or model.tempo_for(style))
        timeline = Timeline(
            RESOLUTION,
            ((0, round(60_000_000 / tempo)),),
            ((0, melody.time_signature),),
            ((0, key.signature),),
        )
        program = resolve_program(request.instrument)
        title = f"Cadenza · {melody.title or 'harmonization'} · {key} · seed {seed}"
        midi_file = parts_midi(parts, timeline, program=program, title=title)
        notes = [n for _, part in parts for n in part]
        lap("arrange")
        stem = f"harmony-{seed}"
        warnings: list[str] = []
        made = self._write(
            out_dir,
            stem,
            midi_file,
            request,
            warnings,
            watch,
            lambda path: draw_piano_roll(
                notes, path, timeline=timeline, title=title, part_names=result.names
            ),
        )
        return Composition(
            midi=made["midi"],
            audio=made.get("audio"),
            picture=made.get("picture"),
            seed=seed,
            events=len(result.melody),
            primer_events=0,
            seconds=round(float(timeline.seconds_at([max(n.end for n in notes)])[0]), 2),
            key=str(key),
            tempo=round(tempo, 2),
            program=program,
            style=style,
            ended_naturally=True,
            mapped_values=0,
            timings=watch.timings,
            warnings=tuple(warnings),
            notes=len(notes),
            log_likelihood=round(result.log_likelihood, 4),
            length=len(result.melody),
            voices=request.voices,
        )

    def _write(
        self,
        out_dir: Path,
        stem: str,
        midi_file: MidiFile,
        request: ComposeRequest,
        warnings: list[str],
        watch: _Stopwatch,
        draw: Callable[[Path], Path],
    ) -> dict[str, Path]:
        """Write a piece's MIDI, picture (``draw(path)``) and audio into ``out_dir``, all in a scratch
        folder first and moved into place only when every stage has succeeded; returns them by kind."""
        timings, lap = watch.timings, watch.lap
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        # Named first and made inside the try, so a Ctrl-C just after it is made still removes it.
        scratch = out_dir / f".cadenza-{secrets.token_hex(8)}"
        rendering: Future[tuple[AudioInfo | None, float]] | None = None
        try:
            scratch.mkdir(mode=0o700)
            made = {"midi": write_midi_file(midi_file, scratch / f"{stem}.mid")}
            lap("midi")
            overlap_started = time.perf_counter()
            if request.audio:  # FluidSynth and the encoder work while the picture is drawn
                target = scratch / f"{stem}.{self.settings.audio_format}"
                rendering = self._audio_pool.submit(self._render, made["midi"], target, warnings)
            if request.picture:
                made["picture"] = draw(scratch / f"{stem}.png")
                lap("picture")
            if rendering is not None:
                rendered, timings["audio"] = rendering.result()
                if rendered is not None:
                    made["audio"] = rendered.path
                    timings["render"] = round(rendered.render_seconds, 3)
                    timings["encode"] = round(rendered.encode_seconds, 3)
            overlapped = time.perf_counter() - overlap_started
            final = {}
            for kind, path in made.items():
                final[kind] = out_dir / path.name
                path.replace(final[kind])
        finally:
            if rendering is not None:
                wait([rendering])  # the picture failed: let FluidSynth finish before its folder goes
            shutil.rmtree(scratch, ignore_errors=True)
        in_sequence = sum(v for k, v in timings.items() if k not in ("picture", "audio", "render", "encode"))
        timings["total"] = round(in_sequence + overlapped, 3)
        return final

    def _render(self, midi: Path, target: Path, warnings: list[str]) -> tuple[AudioInfo | None, float]:
        """Audio for ``midi`` and the seconds it took; ``None`` with a warning when FluidSynth or a
        SoundFont is missing."""
        started = time.perf_counter()
        try:
            info = render_audio(
                midi,
                target,
                find_soundfont(self.settings.soundfont),
                sample_rate=self.settings.sample_rate,
                fmt=self.settings.audio_format,
            )
        except AudioUnavailable as why:
            log.warning("no audio: %s", why)
            warnings.append(f"No audio this time: {why}")
            info = None
        return info, round(time.perf_counter() - started, 3)


def _style(request: ComposeRequest, styles: tuple[str, ...]) -> str:
    """The style asked for (the model's first when none), refused when the model does not know it."""
    if request.style is not None and request.style not in styles:
        raise InvalidOptionError(f"This model knows the styles {', '.join(styles)}, not '{request.style}'.")
    return request.style or styles[0]


def _ring_out(event: Event) -> Event:
    """A last event held for at least a half note, so a forced ending sounds like one."""
    hold = max(event.duration, 2 * TICKS_PER_QUARTER)
    return replace(event, duration=hold, ioi=hold)
