"""In-process FluidSynth synthesis (pyfluidsynth plus the libfluidsynth calls it lacks).

:func:`synthesize` renders note events with libfluidsynth, block-exact, mono,
float32, 22,050 Hz; :class:`SoundfontCache` keeps each soundfont loaded once per
process.  Synthesis settings (:class:`SynthSettings`): gain 0.2, reverb and chorus
on with FluidSynth's defaults -- the ``fluidsynth`` command line MSMD used ran with
those defaults, and the spectrogram's value range depends on the gain.  The stereo
output is clipped to [-1, 1] per channel (as the 16-bit FLAC files MSMD wrote were)
and mixed to mono as ``(left + right) / 2`` (as madmom's loader did).
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from msmd_builder.core.cache import sha256_file
from msmd_builder.core.errors import ConfigError, SynthesisError, ToolNotFoundError
from msmd_builder.core.units import SAMPLE_RATE
from msmd_builder.stages.perform.plans import _check
from msmd_builder.stages.perform.realize import RENDER_BLOCK_SAMPLES, _as_event_table, _grid_samples

__all__ = [
    "SynthSettings",
    "fluidsynth_version",
    "SoundfontCache",
    "default_soundfont_cache",
    "synthesize",
    "rendered_samples",
]


_SUSTAIN_CC = 64


@dataclass(frozen=True, kw_only=True)
class SynthSettings:
    """FluidSynth settings of the synthesis.

    The defaults are FluidSynth's own, i.e. what the ``fluidsynth`` command
    line MSMD used ran with (gain 0.2, reverb and chorus on), except
    ``min_note_length_ms`` (0 instead of 10, so note-offs are placed exactly).
    FluidSynth 2.x reverberates with an FDN reverb instead of the Freeverb of
    the 1.1 series MSMD used (2017), so the tail does not sound exactly like
    MSMD's; the settings' values are the same.

    Attributes
    ----------
    gain : float
        Master gain (``synth.gain``).
    reverb, chorus : bool
        Effect units on (``synth.reverb.active``, ``synth.chorus.active``).
    reverb_room_size, reverb_damp, reverb_width, reverb_level : float
        ``synth.reverb.*`` parameters.
    chorus_voices : int
        ``synth.chorus.nr``.
    chorus_level, chorus_speed_hz, chorus_depth_ms : float
        ``synth.chorus.level``, ``.speed`` (Hz) and ``.depth`` (ms).
    polyphony : int
        Maximum simultaneous voices (``synth.polyphony``).
    min_note_length_ms : int
        ``synth.min-note-length``: shorter notes are held this long.
    tail_sec : float
        Audio rendered after the last event, for the release and reverb tail.
    clip : bool
        Clip each stereo channel to [-1, 1] before the mono mix, as 16-bit
        output would.
    interpolation : {'4th-order', 'none', 'linear', '7th-order'}
        How FluidSynth interpolates samples when it transposes them
        (``fluid_synth_set_interp_method``); 4th-order is its default.
    """

    gain: float = 0.2
    reverb: bool = True
    chorus: bool = True
    reverb_room_size: float = 0.2
    reverb_damp: float = 0.0
    reverb_width: float = 0.5
    reverb_level: float = 0.9
    chorus_voices: int = 3
    chorus_level: float = 2.0
    chorus_speed_hz: float = 0.3
    chorus_depth_ms: float = 8.0
    polyphony: int = 256
    min_note_length_ms: int = 0
    tail_sec: float = 1.0
    clip: bool = True
    interpolation: str = "4th-order"

    def __post_init__(self) -> None:
        _check(self.gain > 0, "gain must be > 0")
        _check(
            self.interpolation in INTERPOLATION,
            f"interpolation must be one of {', '.join(INTERPOLATION)}, got {self.interpolation!r}",
        )
        _check(self.tail_sec >= 0, "tail_sec must be >= 0")
        _check(1 <= self.polyphony <= 65535, "polyphony must be in 1..65535")
        _check(self.min_note_length_ms >= 0, "min_note_length_ms must be >= 0")

    def fluid_settings(self, sample_rate: int) -> dict[str, int | float]:
        """Return the FluidSynth settings (name -> value, typed as FluidSynth expects)."""
        return {
            "synth.sample-rate": float(sample_rate),
            "synth.gain": float(self.gain),
            "synth.midi-channels": 16,
            "synth.audio-channels": 1,
            "synth.cpu-cores": 1,
            "synth.polyphony": int(self.polyphony),
            "synth.min-note-length": int(self.min_note_length_ms),
            "synth.reverb.active": int(self.reverb),
            "synth.reverb.room-size": float(self.reverb_room_size),
            "synth.reverb.damp": float(self.reverb_damp),
            "synth.reverb.width": float(self.reverb_width),
            "synth.reverb.level": float(self.reverb_level),
            "synth.chorus.active": int(self.chorus),
            "synth.chorus.nr": int(self.chorus_voices),
            "synth.chorus.level": float(self.chorus_level),
            "synth.chorus.speed": float(self.chorus_speed_hz),
            "synth.chorus.depth": float(self.chorus_depth_ms),
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-serialisable dict.

        Settings added after the first release are left out while they have
        their default, so the cache keys of performances made before stay.
        """
        document = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for name, default in _LATER_DEFAULTS.items():
            if document[name] == default:
                del document[name]
        return document


#: FluidSynth's interpolation methods (``fluid_interp``) by name.
INTERPOLATION = {"none": 0, "linear": 1, "4th-order": 4, "7th-order": 7}
#: Settings added after the first release, with their defaults (left out of ``to_dict``).
_LATER_DEFAULTS = {"interpolation": "4th-order"}


_FLUID_INSTALL_HINT = (
    "install libfluidsynth with `apt-get install libfluidsynth3` (as root) and the "
    "Python binding with `pip install pyfluidsynth==1.4.0`"
)


@functools.cache
def _fluid() -> SimpleNamespace:
    """Import pyfluidsynth and declare the libfluidsynth calls it does not wrap."""
    try:
        import fluidsynth
    except (ImportError, OSError) as exc:
        raise ToolNotFoundError(
            f"FluidSynth is not available ({exc}); {_FLUID_INSTALL_HINT}"
        ) from exc
    lib = fluidsynth._fl
    c_int, c_void_p = ctypes.c_int, ctypes.c_void_p

    def proto(name: str, restype: Any, *argtypes: Any) -> Any:
        return ctypes.CFUNCTYPE(restype, *argtypes)((name, lib))

    try:  # FluidSynth >= 2.2; without it soundfonts are loaded whole
        pin_preset = proto("fluid_synth_pin_preset", c_int, c_void_p, c_int, c_int, c_int)
    except AttributeError:
        pin_preset = None

    version = proto("fluid_version_str", ctypes.c_char_p)()
    return SimpleNamespace(
        module=fluidsynth,
        version=version.decode() if version else "unknown",
        write_float=proto(
            "fluid_synth_write_float",
            c_int,
            c_void_p,
            c_int,
            c_void_p,
            c_int,
            c_int,
            c_void_p,
            c_int,
            c_int,
        ),
        get_sfont_by_id=proto("fluid_synth_get_sfont_by_id", c_void_p, c_void_p, c_int),
        add_sfont=proto("fluid_synth_add_sfont", c_int, c_void_p, c_void_p),
        remove_sfont=proto("fluid_synth_remove_sfont", c_int, c_void_p, c_void_p),
        program_select=proto(
            "fluid_synth_program_select", c_int, c_void_p, c_int, c_int, c_int, c_int
        ),
        pin_preset=pin_preset,
        set_interp_method=proto("fluid_synth_set_interp_method", c_int, c_void_p, c_int, c_int),
        set_log_function=proto("fluid_set_log_function", c_void_p, c_int, c_void_p, c_void_p),
        log_lock=threading.Lock(),
    )


def fluidsynth_version() -> str:
    """Return the version of the loaded libfluidsynth, e.g. ``'2.3.1'``."""
    return str(_fluid().version)


_FLUID_WARN = 2


@dataclass
class _LoadedSoundfont:
    """A soundfont loaded into a holder synth; render synths borrow its ``sfont``."""

    path: Path
    sample_rate: int
    holder: Any
    sfid: int
    sfont: int
    load_sec: float
    pinned: set[tuple[int, int]] = field(default_factory=set)


class SoundfontCache:
    """Soundfonts loaded once per process and shared by every rendering.

    Loading a soundfont can cost more than rendering a piece (seconds for
    MuseScore_General_Full.sf3's compressed samples), so a worker keeps each
    file loaded and reuses it for every piece.  Each file is loaded by a
    *holder* synth, with dynamic sample loading, and the presets in use are
    pinned (see :meth:`load`); every :func:`synthesize` call then
    creates a brand-new FluidSynth synth (about 1 ms), attaches the already
    loaded soundfont to it (``fluid_synth_add_sfont``), renders, detaches it
    and deletes the synth.

    A fresh synth per rendering is what makes reuse safe: resetting a used
    synth (all notes off, all sounds off, system reset) was measured *not* to
    reproduce a fresh synth's output (differences up to 1e-3 even with reverb
    and chorus off), while the borrowed-soundfont renderings are bit-identical
    to renderings with a freshly loaded soundfont.

    Not thread-safe: use one cache per thread (processes get their own).

    Attributes
    ----------
    n_loads : int
        How many soundfont files this cache has loaded (for tests and stats).
    """

    def __init__(self) -> None:
        self._loaded: dict[tuple[str, int], _LoadedSoundfont] = {}
        self._hashes: dict[str, str] = {}
        self.n_loads = 0

    def __len__(self) -> int:
        return len(self._loaded)

    def __enter__(self) -> SoundfontCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load(
        self,
        path: str | os.PathLike[str],
        *,
        sample_rate: int = SAMPLE_RATE,
        presets: Iterable[tuple[int, int]] = (),
    ) -> Any:
        """Return the loaded soundfont at ``path``, loading it on first use.

        Files are loaded with FluidSynth's dynamic sample loading: opening the
        file reads only its headers, and the samples of a preset are read (and,
        for ``.sf3``, decoded) when the preset is *pinned*.  Pinning only the
        piano preset makes MuseScore_General_Full.sf3 load about 8 times faster
        than decoding the whole General MIDI set.

        Parameters
        ----------
        path : path-like
            Soundfont file.
        sample_rate : int, optional
            Sample rate of the renderings that will use it, Hz.
        presets : iterable of (bank, program), optional
            Presets to pin (load their samples and keep them loaded); presets
            already pinned cost nothing.

        Returns
        -------
        object
            An opaque handle for :func:`synthesize` (``.load_sec`` is the time
            spent loading and pinning).

        Raises
        ------
        ConfigError
            If FluidSynth cannot load the file or a preset does not exist.
        """
        resolved = Path(path).resolve()
        key = (str(resolved), int(sample_rate))
        fl = _fluid()
        loaded = self._loaded.get(key)
        if loaded is None:
            if not resolved.is_file():
                raise ConfigError(f"soundfont file {path} does not exist")
            start = time.perf_counter()
            holder = fl.module.Synth(
                gain=0.2,
                samplerate=float(sample_rate),
                channels=16,
                **{"synth.dynamic-sample-loading": int(fl.pin_preset is not None)},
            )
            # update_midi_preset=0: channels are assigned explicitly by every
            # rendering; 1 would make the holder select (and decode) the GM presets.
            sfid = holder.sfload(str(resolved), update_midi_preset=0)
            if sfid is None or sfid < 0:
                holder.delete()
                raise ConfigError(f"FluidSynth could not load the soundfont {resolved}")
            sfont = fl.get_sfont_by_id(holder.synth, sfid)
            if not sfont:
                holder.delete()
                raise ConfigError(f"FluidSynth lost the soundfont {resolved} after loading it")
            loaded = _LoadedSoundfont(
                resolved, int(sample_rate), holder, sfid, sfont, time.perf_counter() - start
            )
            self._loaded[key] = loaded
            self.n_loads += 1
        for bank, program in presets:
            preset = (int(bank), int(program))
            if preset in loaded.pinned:
                continue
            start = time.perf_counter()
            if fl.pin_preset is None:
                # Whole file already loaded: check the preset exists by selecting it.
                ok = fl.program_select(loaded.holder.synth, 0, loaded.sfid, *preset) == 0
            else:
                ok = fl.pin_preset(loaded.holder.synth, loaded.sfid, *preset) == 0
            if not ok:
                raise ConfigError(
                    f"{resolved.name} has no preset at bank {preset[0]} program {preset[1]}"
                )
            loaded.pinned.add(preset)
            loaded.load_sec += time.perf_counter() - start
        return loaded

    def sha256(self, path: str | os.PathLike[str]) -> str:
        """Return the SHA-256 of a soundfont file, hashed once per cache."""
        resolved = str(Path(path).resolve())
        if resolved not in self._hashes:
            self._hashes[resolved] = sha256_file(resolved)
        return self._hashes[resolved]

    def close(self) -> None:
        """Unload every soundfont (delete the holder synths)."""
        for loaded in self._loaded.values():
            loaded.holder.delete()
        self._loaded.clear()


_DEFAULT_CACHE: SoundfontCache | None = None


def default_soundfont_cache() -> SoundfontCache:
    """Return the process-wide :class:`SoundfontCache` used when none is passed."""
    global _DEFAULT_CACHE
    if _DEFAULT_CACHE is None:
        _DEFAULT_CACHE = SoundfontCache()
    return _DEFAULT_CACHE


def _schedule(
    events: np.ndarray, pedal: np.ndarray | None, sample_rate: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (sample, kind, a, b) of all MIDI events in playing order.

    kind 0 = note-off (a = pitch), 1 = CC64 (b = value), 2 = note-on (a = pitch,
    b = velocity); at the same sample note-offs come first, then pedal, then
    note-ons, so a repeated note is released before it is struck again.
    """
    on = _grid_samples(events["onset_sec"], sample_rate)
    off = np.maximum(_grid_samples(events["offset_sec"], sample_rate), on + RENDER_BLOCK_SAMPLES)
    pitch = events["pitch"].astype(np.int64)
    vel = np.clip(events["velocity"].astype(np.int64), 1, 127)
    parts = [
        (off, np.zeros_like(off), pitch, np.zeros_like(off)),
        (on, np.full_like(on, 2), pitch, vel),
    ]
    if pedal is not None and pedal.size:
        t = _grid_samples(pedal["time_sec"], sample_rate)
        val = np.clip(pedal["value"].astype(np.int64), 0, 127)
        parts.append((t, np.ones_like(t), np.full_like(t, _SUSTAIN_CC), val))
    sample = np.concatenate([p[0] for p in parts])
    kind = np.concatenate([p[1] for p in parts])
    a = np.concatenate([p[2] for p in parts])
    b = np.concatenate([p[3] for p in parts])
    order = np.lexsort((np.arange(sample.size), kind, sample))
    return sample[order], kind[order], a[order], b[order]


def synthesize(
    events: np.ndarray,
    *,
    soundfont_path: str | os.PathLike[str],
    bank: int = 0,
    program: int = 0,
    sample_rate: int = SAMPLE_RATE,
    settings: SynthSettings | None = None,
    pedal: np.ndarray | None = None,
    cache: SoundfontCache | None = None,
) -> np.ndarray:
    """Render note events to mono audio with FluidSynth, in-process.

    Every event is applied at its sample index on the 64-sample render grid
    (see :func:`snap_to_render_grid`; times are rounded to the nearest block):
    the synth is run with ``fluid_synth_write_float`` exactly up to the event,
    the event is sent, and rendering continues.  Notes of the same pitch that
    overlap are handled like a keyboard: the later note-on re-strikes the key,
    and the key is released at the last of their note-offs.  After the last
    event ``settings.tail_sec`` more audio is rendered.  No files are written.

    Parameters
    ----------
    events : np.ndarray [shape=(n,), dtype=PERFORMED_EVENT_DTYPE]
        Notes in performance time (uses ``onset_sec``, ``offset_sec``,
        ``pitch``, ``velocity``; velocities are clipped to 1..127).
    soundfont_path : path-like
        Soundfont file.
    bank, program : int, optional
        Preset to play.
    sample_rate : int, optional
        Output sample rate, Hz (the synth runs at this rate; no resampling).
    settings : SynthSettings, optional
        Gain and effects; default :class:`SynthSettings`.
    pedal : np.ndarray [dtype=PEDAL_EVENT_DTYPE], optional
        Sustain-pedal events.
    cache : SoundfontCache, optional
        Where loaded soundfonts are kept; default :func:`default_soundfont_cache`.

    Returns
    -------
    audio : np.ndarray [shape=(n_samples,), dtype=float32]
        Mono audio, ``(left + right) / 2`` of the (clipped) stereo output;
        ``n_samples = last event sample + round(tail_sec * sample_rate)``.
        Deterministic: identical inputs give bit-identical output.

    Raises
    ------
    SynthesisError
        If the events are invalid or FluidSynth fails.
    ConfigError
        If the soundfont cannot be loaded or has no such preset.
    ToolNotFoundError
        If libfluidsynth or pyfluidsynth is missing.
    """
    settings = settings if settings is not None else SynthSettings()
    table = _as_event_table(events)
    cache = cache if cache is not None else default_soundfont_cache()
    loaded = cache.load(soundfont_path, sample_rate=sample_rate, presets=[(bank, program)])
    fl = _fluid()
    sample, kind, a, b = _schedule(table, pedal, sample_rate)
    n_out = _output_samples(sample, settings, sample_rate)
    block = RENDER_BLOCK_SAMPLES
    n_render = -(-n_out // block) * block
    left = np.zeros(n_render, dtype=np.float32)
    right = np.zeros(n_render, dtype=np.float32)
    left_ptr, right_ptr = left.ctypes.data, right.ctypes.data

    synth = fl.module.Synth(**_synth_kwargs(settings, sample_rate))
    attached = False
    try:
        sfid = fl.add_sfont(synth.synth, loaded.sfont)
        if sfid < 0:
            raise SynthesisError(f"FluidSynth could not attach {loaded.path}")
        attached = True
        if fl.program_select(synth.synth, 0, sfid, int(bank), int(program)) != 0:
            raise SynthesisError(
                f"{loaded.path.name} has no preset at bank {bank} program {program}"
            )
        if settings.interpolation != "4th-order":
            method = INTERPOLATION[settings.interpolation]
            if fl.set_interp_method(synth.synth, -1, method) != 0:
                raise SynthesisError(f"FluidSynth refused interpolation {settings.interpolation}")

        def render(start: int, stop: int) -> None:
            if stop > start:
                rc = fl.write_float(
                    synth.synth, stop - start, left_ptr, start, 1, right_ptr, start, 1
                )
                if rc != 0:
                    raise SynthesisError("fluid_synth_write_float failed")

        key_count = [0] * 128
        cursor = 0
        noteon, noteoff, cc = synth.noteon, synth.noteoff, synth.cc
        for s, k, x, y in zip(sample.tolist(), kind.tolist(), a.tolist(), b.tolist(), strict=True):
            if s > cursor:
                render(cursor, s)
                cursor = s
            if k == 2:
                key_count[x] += 1
                noteon(0, x, y)
            elif k == 0:
                key_count[x] -= 1
                if key_count[x] == 0:
                    noteoff(0, x)
            else:
                cc(0, x, y)
        render(cursor, n_render)
    finally:
        if attached:
            synth.all_sounds_off(0)
            with fl.log_lock:  # detaching resets all channels, each warns "no preset"
                previous = fl.set_log_function(_FLUID_WARN, None, None)
                try:
                    fl.remove_sfont(synth.synth, loaded.sfont)
                finally:
                    fl.set_log_function(_FLUID_WARN, previous, None)
        synth.delete()

    if settings.clip:
        np.clip(left, -1.0, 1.0, out=left)
        np.clip(right, -1.0, 1.0, out=right)
    mono = (left[:n_out] + right[:n_out]) * np.float32(0.5)
    return mono.astype(np.float32, copy=False)


def _output_samples(sample: np.ndarray, settings: SynthSettings, sample_rate: int) -> int:
    """Length of a rendering: its last scheduled event's sample plus the tail."""
    tail = int(round(settings.tail_sec * sample_rate))
    return (int(sample[-1]) if sample.size else 0) + tail


def rendered_samples(
    events: np.ndarray,
    *,
    pedal: np.ndarray | None = None,
    settings: SynthSettings | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> int:
    """Return how many samples :func:`synthesize` renders for these events, without rendering."""
    settings = settings if settings is not None else SynthSettings()
    sample, *_ = _schedule(_as_event_table(events), pedal, sample_rate)
    return _output_samples(sample, settings, sample_rate)


def _synth_kwargs(settings: SynthSettings, sample_rate: int) -> dict[str, Any]:
    fluid = settings.fluid_settings(sample_rate)
    kwargs: dict[str, Any] = {
        "gain": fluid.pop("synth.gain"),
        "samplerate": fluid.pop("synth.sample-rate"),
        "channels": fluid.pop("synth.midi-channels"),
    }
    kwargs.update(fluid)
    return kwargs
