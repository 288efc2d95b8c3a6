"""Performances: plans, humanization, in-process FluidSynth synthesis, onset checks.

Stage ``perform``.  Reads a piece's performed note events (a
:data:`~msmd_builder.tables.PERFORMED_EVENT_DTYPE` table at tempo ratio 1.0, times
in *score seconds*) and writes one file per performance::

    <out_dir>/<performance_id>.npz      arrays below (always)
    <out_dir>/<performance_id>.flac     16-bit mono audio (only with keep_audio=True)

The pieces of the stage, in the order they run:

1. :func:`plan_performances` decides which performances a piece gets (tempo
   ratio, soundfont, velocity, humanization, seed), deterministically from a
   global seed and the piece id, following a :class:`PerformanceRecipe`
   (MSMD's by default).
2. :func:`realize` maps the score-time events to performance time: a tempo
   ratio ``r`` makes the performance ``r`` times as fast (``t_perf = t_score /
   r``); an optional :class:`HumanizeSettings` adds a smooth, bounded local
   tempo curve, dynamics, chord asynchrony and sustain pedal
   (:func:`realize_pedal`).  The mapping is monotone and evaluated exactly, so
   every note's performance onset and offset are known.
3. :func:`snap_to_render_grid` moves every event to FluidSynth's 64-sample
   rendering grid (at most 1.45 ms at 22,050 Hz): FluidSynth starts a note only
   at the beginning of one of its 64-sample blocks, so this is the only way the
   stored times can equal the times at which notes sound, sample for sample.
4. :func:`synthesize` renders the events with libfluidsynth in-process
   (pyfluidsynth), block-exact, mono, float32, 22,050 Hz.
5. :func:`verify_onsets` checks, independently of the synthesizer, that the
   audio has an onset within one spectrogram frame of every recorded onset.
6. :func:`perform_piece` ties it together, computes the spectrogram
   (:func:`msmd_builder.spectrogram.compute_spectrogram`) and writes the file
   atomically, skipping performances whose cache key is unchanged.

NPZ layout (``format_name = "msmd-builder/performance"``, ``format_version = 1``;
read it back with :func:`load_performance`):

==========================  =====================================================
``format_name``             str
``format_version``          int64 scalar
``performance_id``          str
``piece_id``                str
``plan_json``               str, :meth:`PerformancePlan.to_dict` as JSON
``synth_json``              str, :meth:`SynthSettings.to_dict` and the soundfont
``cache_key``               str, hex SHA-256 (see :func:`performance_cache_key`)
``sample_rate``             int64 scalar, Hz
``n_samples``               int64 scalar, length of the audio
``duration_sec``            float64 scalar
``spectrogram``             float32 (92, n_frames), log-frequency spectrogram
``events``                  PERFORMED_EVENT_DTYPE (n_events,): performance times,
                            snapped to the render grid, in the input's row order
``onset_frame``             int64 (n_events,), ``units.sec_to_frame(onset_sec)``
``pedal``                   PEDAL_EVENT_DTYPE (n_pedal,), sustain pedal (CC64)
``onset_check_fraction``    float64 scalar, :func:`verify_onsets` result (NaN if
                            not verified)
==========================  =====================================================

Synthesis settings (:class:`SynthSettings`): gain 0.2, reverb and chorus on
with FluidSynth's defaults -- the ``fluidsynth`` command line MSMD used ran
with those defaults, and the spectrogram's value range depends on the gain.
The stereo output is clipped to [-1, 1] per channel (as the 16-bit FLAC files
MSMD wrote were) and mixed to mono as ``(left + right) / 2`` (as madmom's
loader did).  See ``docs/performances.md`` for the measured costs.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import math
import os
import threading
import time
import zipfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from msmd_builder.cache import (
    atomic_path,
    atomic_write_json,
    sha256_bytes,
    sha256_file,
    stable_key,
)
from msmd_builder.errors import ConfigError, SynthesisError, ToolNotFoundError
from msmd_builder.soundfonts import (
    SoundfontRole,
    SoundfontSpec,
    find_soundfont,
    load_soundfonts,
    locate,
    soundfonts_with_role,
)
from msmd_builder.spectrogram import compute_spectrogram
from msmd_builder.tables import PERFORMED_EVENT_DTYPE, empty_performed_events
from msmd_builder.units import FPS, SAMPLE_RATE, sec_to_frame

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "RENDER_BLOCK_SAMPLES",
    "PEDAL_EVENT_DTYPE",
    "MSMD_TEMPO_RATIOS",
    "TEMPO_ROBUSTNESS_RATIOS",
    "SplitRole",
    "derive_seed",
    "HumanizeSettings",
    "SplitRecipe",
    "PerformanceRecipe",
    "MSMD_RECIPE",
    "TEMPO_ROBUSTNESS_RECIPE",
    "HUMANIZED_RECIPE",
    "PerformancePlan",
    "plan_performances",
    "TempoMap",
    "tempo_map",
    "realize",
    "realize_pedal",
    "snap_to_render_grid",
    "SynthSettings",
    "SoundfontCache",
    "default_soundfont_cache",
    "fluidsynth_version",
    "synthesize",
    "onset_strength",
    "detect_onsets",
    "OnsetCheck",
    "verify_onsets",
    "PerformanceResult",
    "performance_cache_key",
    "perform_piece",
    "load_performance",
    "VERIFY_CHOICES",
    "plan_piece",
    "PerformStageResult",
    "perform_stage",
]

#: ``format_name`` stored in every performance file.
FORMAT_NAME = "msmd-builder/performance"
#: ``format_version`` stored in every performance file; bump on layout changes.
FORMAT_VERSION = 1

#: FluidSynth renders in blocks of this many samples (``FLUID_BUFSIZE``) and
#: starts or stops notes only at block boundaries.
RENDER_BLOCK_SAMPLES = 64

#: Sustain-pedal events (MIDI CC64) in performance time.
#:
#: ``time_sec``  when the pedal moves, in seconds
#: ``value``     CC64 value: 127 = down (sustain), 0 = up
PEDAL_EVENT_DTYPE = np.dtype([("time_sec", np.float64), ("value", np.int16)])

#: Tempo ratios of MSMD's augmentation (``msmd_manager_app.py``: 0.9 to 1.1 in 0.05 steps).
MSMD_TEMPO_RATIOS: tuple[float, ...] = (0.9, 0.95, 1.0, 1.05, 1.1)
#: Tempo ratios of the tempo-robustness evaluation.
TEMPO_ROBUSTNESS_RATIOS: tuple[float, ...] = (0.5, 0.66, 1.0, 1.33, 2.0)

SplitRole = Literal["train", "valid", "test"]

_SPLIT_ROLES: tuple[str, ...] = ("train", "valid", "test")
_MIN_DURATION_SEC = 0.001
_SUSTAIN_CC = 64


# --------------------------------------------------------------------------------------
# Seeds
# --------------------------------------------------------------------------------------


def derive_seed(*parts: object) -> int:
    """Return a stable 63-bit seed derived from ``parts``.

    The parts are joined as text (``str(part)``, separated by ``U+001F``) and
    hashed with SHA-256; the first 8 bytes, big-endian, with the top bit
    cleared, are the seed.  Unlike Python's ``hash()`` this is identical across
    processes, platforms and Python versions.

    Parameters
    ----------
    *parts : object
        Anything with a stable ``str()``: the global seed, a piece id, ...

    Returns
    -------
    int
        A seed in ``[0, 2**63)``.
    """
    text = "\x1f".join(str(p) for p in parts)
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


def _rng(seed: int, stream: int) -> np.random.Generator:
    """Return an independent generator for one aspect (``stream``) of a performance."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream])))


_STREAM_TEMPO = 0
_STREAM_VELOCITY = 1
_STREAM_ASYNCHRONY = 2


# --------------------------------------------------------------------------------------
# Recipes and plans
# --------------------------------------------------------------------------------------


def _ratio_milli(ratio: float) -> int:
    return int(round(1000 * ratio))


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True, kw_only=True)
class HumanizeSettings:
    """How a humanized performance departs from the score's timing and dynamics.

    Every random choice is drawn from the plan's seed, so a plan always gives
    the same performance.

    Attributes
    ----------
    max_tempo_deviation : float
        Bound on the local *duration stretch* ``s(t)``: score time is stretched
        by a factor in ``[1 - d, 1 + d]`` everywhere, i.e. the local tempo stays
        within ``r / (1 + d)`` and ``r / (1 - d)`` of a plan with tempo ratio ``r``.
    tempo_knot_spacing_sec : float
        Score seconds between the knots of the tempo curve.  The knot values
        are drawn uniformly in ``[1 - d, 1 + d]`` and joined by a monotone
        cubic (PCHIP) interpolant, which never overshoots its knots, so the
        bound holds between knots too.  Fewer knots give slower rubato.
    final_ritardando : float
        Extra stretch ramped in linearly over the last ``ritardando_sec`` score
        seconds (0 disables it); the result is clipped to the bound above.
    ritardando_sec : float
        Length of the final ritardando, score seconds.
    velocity_range : int
        Amplitude of the smooth dynamics curve: an offset in
        ``[-velocity_range, velocity_range]`` (PCHIP through uniform knots) added
        to the base velocity.  0 disables it.
    velocity_knot_spacing_sec : float
        Score seconds between the knots of the dynamics curve.
    velocity_jitter : int
        Per-note integer offset, uniform in ``[-velocity_jitter, velocity_jitter]``.
    max_asynchrony_sec : float
        Notes that share a score onset (chords) are each shifted by a uniform
        offset in ``[-a, a]`` seconds (single notes are not moved; onsets are
        kept ``>= 0``).
    sustain_pedal : bool
        Add sustain-pedal (CC64) events: pedal down shortly after the first
        note, "legato" re-pedalling (up at the onset, down ``pedal_lift_sec``
        later) at the first onset of every span of ``pedal_change_whole`` whole
        notes, up at the last note-off.  A simple stand-in for changing the
        pedal at measure or harmony changes.
    pedal_change_whole : float
        Re-pedalling period in musical time (whole notes); 0.5 = every half note.
    pedal_lift_sec : float
        Time between the pedal going up and down again, seconds.
    """

    max_tempo_deviation: float = 0.1
    tempo_knot_spacing_sec: float = 4.0
    final_ritardando: float = 0.08
    ritardando_sec: float = 4.0
    velocity_range: int = 16
    velocity_knot_spacing_sec: float = 4.0
    velocity_jitter: int = 4
    max_asynchrony_sec: float = 0.005
    sustain_pedal: bool = False
    pedal_change_whole: float = 0.5
    pedal_lift_sec: float = 0.08

    def __post_init__(self) -> None:
        _check(0.0 <= self.max_tempo_deviation < 0.5, "max_tempo_deviation must be in [0, 0.5)")
        _check(self.tempo_knot_spacing_sec > 0, "tempo_knot_spacing_sec must be > 0")
        _check(self.final_ritardando >= 0, "final_ritardando must be >= 0")
        _check(self.ritardando_sec > 0, "ritardando_sec must be > 0")
        _check(0 <= self.velocity_range <= 63, "velocity_range must be in 0..63")
        _check(self.velocity_knot_spacing_sec > 0, "velocity_knot_spacing_sec must be > 0")
        _check(0 <= self.velocity_jitter <= 32, "velocity_jitter must be in 0..32")
        _check(0.0 <= self.max_asynchrony_sec <= 0.05, "max_asynchrony_sec must be in [0, 0.05]")
        _check(self.pedal_change_whole > 0, "pedal_change_whole must be > 0")
        _check(self.pedal_lift_sec > 0, "pedal_lift_sec must be > 0")

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-serialisable dict."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HumanizeSettings:
        """Build settings from a dict; missing keys take their defaults."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        _check(not unknown, f"unknown humanize settings: {sorted(unknown)}")
        return cls(**dict(data))


@dataclass(frozen=True)
class SplitRecipe:
    """Which performances the pieces of one split role get.

    Candidates are every (tempo ratio, soundfont) pair of ``tempo_ratios`` x
    the soundfonts with ``soundfont_role``.  With ``include_reference`` the
    first is (1.0, the first such soundfont) -- the canonical rendering --
    and the rest are chosen among the other candidates by a stable hash of
    (seed, piece id, candidate), so each piece gets its own deterministic draw.

    Attributes
    ----------
    soundfont_role : {'train', 'test'}
        Soundfonts to use.
    tempo_ratios : tuple of float
        Tempo ratios to draw from (``> 0``; 2.0 = twice as fast).
    n_performances : int or None
        How many performances a piece gets at most; None for all candidates.
    include_reference : bool
        Always include (1.0, first soundfont) first (it is never humanized).
    velocity : int or None
        Fixed MIDI velocity of every note (MSMD v1.1: 64); None keeps the
        velocities of the input events (LilyPond's dynamics).
    humanize : HumanizeSettings or None
        Humanize the (non-reference) performances; None = exact score timing.
    """

    soundfont_role: SoundfontRole = "train"
    tempo_ratios: tuple[float, ...] = MSMD_TEMPO_RATIOS
    n_performances: int | None = 7
    include_reference: bool = True
    velocity: int | None = 64
    humanize: HumanizeSettings | None = None

    def __post_init__(self) -> None:
        _check(self.soundfont_role in ("train", "test"), "soundfont_role must be train or test")
        _check(len(self.tempo_ratios) > 0, "tempo_ratios must not be empty")
        for r in self.tempo_ratios:
            _check(math.isfinite(r) and r > 0, f"tempo ratio {r!r} must be a positive number")
        milli = [_ratio_milli(r) for r in self.tempo_ratios]
        _check(len(set(milli)) == len(milli), f"duplicate tempo ratios in {self.tempo_ratios}")
        _check(
            self.n_performances is None or self.n_performances >= 1,
            "n_performances must be >= 1 or None",
        )
        _check(
            self.velocity is None or 1 <= self.velocity <= 127,
            "velocity must be in 1..127 or None",
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the recipe as a JSON/YAML-friendly dict."""
        return {
            "soundfont_role": self.soundfont_role,
            "tempo_ratios": list(self.tempo_ratios),
            "n_performances": self.n_performances,
            "include_reference": self.include_reference,
            "velocity": self.velocity,
            "humanize": self.humanize.to_dict() if self.humanize is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SplitRecipe:
        """Build a split recipe from a dict; missing keys take their defaults.

        ``humanize`` may be a dict of :class:`HumanizeSettings` fields, ``true``
        (the defaults) or ``null``/``false``.
        """
        unknown = set(data) - set(cls.__dataclass_fields__)
        _check(not unknown, f"unknown split recipe keys: {sorted(unknown)}")
        kwargs: dict[str, Any] = dict(data)
        if "tempo_ratios" in kwargs:
            kwargs["tempo_ratios"] = tuple(float(r) for r in kwargs["tempo_ratios"])
        humanize = kwargs.get("humanize")
        if humanize is True:
            kwargs["humanize"] = HumanizeSettings()
        elif humanize is False:
            kwargs["humanize"] = None
        elif isinstance(humanize, Mapping):
            kwargs["humanize"] = HumanizeSettings.from_dict(humanize)
        return cls(**kwargs)


def _default_test_split() -> SplitRecipe:
    return SplitRecipe(soundfont_role="test", tempo_ratios=(1.0,), n_performances=1)


@dataclass(frozen=True)
class PerformanceRecipe:
    """Per-split-role performance recipes.

    The default is MSMD's (see :data:`MSMD_RECIPE`): train and valid pieces get
    up to 7 performances -- (1.0, reference soundfont) plus 6 drawn from tempo
    ratios {0.9, 0.95, 1.0, 1.05, 1.1} x the 3 training soundfonts -- at
    velocity 64; test pieces get one performance at tempo 1.0 with the held-out
    soundfont.

    Attributes
    ----------
    name : str
        Recipe name (recorded in nothing but logs and docs).
    train, valid, test : SplitRecipe
        What pieces of each split role get.
    """

    name: str = "msmd"
    train: SplitRecipe = field(default_factory=SplitRecipe)
    valid: SplitRecipe = field(default_factory=SplitRecipe)
    test: SplitRecipe = field(default_factory=_default_test_split)

    def for_role(self, role: SplitRole) -> SplitRecipe:
        """Return the split recipe of ``role`` (train, valid or test)."""
        _check(role in _SPLIT_ROLES, f"role must be one of {_SPLIT_ROLES}, got {role!r}")
        return getattr(self, role)

    def to_dict(self) -> dict[str, Any]:
        """Return the recipe as a JSON/YAML-friendly dict."""
        return {
            "name": self.name,
            "train": self.train.to_dict(),
            "valid": self.valid.to_dict(),
            "test": self.test.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PerformanceRecipe:
        """Build a recipe from a dict (e.g. loaded from YAML).

        Split roles that are missing keep MSMD's recipe; keys missing inside a
        split keep the :class:`SplitRecipe` defaults (for ``test``: tempo 1.0,
        one performance, ``test`` soundfonts, unless given).
        """
        unknown = set(data) - {"name", *_SPLIT_ROLES}
        _check(not unknown, f"unknown recipe keys: {sorted(unknown)}")
        default = cls()
        splits: dict[str, SplitRecipe] = {}
        for role in _SPLIT_ROLES:
            if role not in data:
                splits[role] = getattr(default, role)
                continue
            base = getattr(default, role).to_dict()
            base.update(dict(data[role]))
            splits[role] = SplitRecipe.from_dict(base)
        return cls(name=str(data.get("name", "custom")), **splits)


#: MSMD's recipe (Dorfer et al. 2018, Section 2 and ``msmd_manager_app.py``).
MSMD_RECIPE = PerformanceRecipe()

#: MSMD's train/valid recipe; test pieces at 0.5, 0.66, 1, 1.33 and 2 times the
#: original tempo with the held-out soundfont (tempo-robustness evaluation).
TEMPO_ROBUSTNESS_RECIPE = PerformanceRecipe(
    name="tempo-robustness",
    test=SplitRecipe(
        soundfont_role="test",
        tempo_ratios=TEMPO_ROBUSTNESS_RATIOS,
        n_performances=None,
        include_reference=False,
    ),
)

#: MSMD's recipe with humanized train/valid performances (the reference
#: performance stays exact), LilyPond's velocities as the dynamics base, and
#: sustain pedal.  Test pieces as in MSMD.
HUMANIZED_RECIPE = PerformanceRecipe(
    name="humanized",
    train=SplitRecipe(velocity=None, humanize=HumanizeSettings(sustain_pedal=True)),
    valid=SplitRecipe(velocity=None, humanize=HumanizeSettings(sustain_pedal=True)),
)


@dataclass(frozen=True)
class PerformancePlan:
    """Everything that defines one performance of a piece.

    Attributes
    ----------
    performance_id : str
        ``<piece_id>__tempo-<1000 * tempo_ratio>__<soundfont>``, plus
        ``__humanized`` for humanized performances; unique within a piece.
    piece_id : str
        The piece this performance belongs to.
    soundfont : str
        Name of a :class:`~msmd_builder.soundfonts.SoundfontSpec`.
    tempo_ratio : float
        Performance speed relative to the score (2.0 = twice as fast):
        ``t_perf = t_score / tempo_ratio``.
    velocity : int or None
        Fixed MIDI velocity for every note; None keeps the input velocities
        (the base of the dynamics curve when humanized).
    humanize : HumanizeSettings or None
        Humanization; None for exact score timing.
    seed : int
        Seed of every random choice of this performance.
    """

    performance_id: str
    piece_id: str
    soundfont: str
    tempo_ratio: float
    velocity: int | None = 64
    humanize: HumanizeSettings | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        _check(
            math.isfinite(self.tempo_ratio) and self.tempo_ratio > 0,
            f"tempo_ratio must be > 0, got {self.tempo_ratio!r}",
        )
        _check(
            self.velocity is None or 1 <= self.velocity <= 127,
            f"velocity must be in 1..127 or None, got {self.velocity!r}",
        )
        _check(bool(self.performance_id), "performance_id must not be empty")

    def to_dict(self) -> dict[str, Any]:
        """Return the plan as a JSON-serialisable dict."""
        return {
            "performance_id": self.performance_id,
            "piece_id": self.piece_id,
            "soundfont": self.soundfont,
            "tempo_ratio": self.tempo_ratio,
            "velocity": self.velocity,
            "humanize": self.humanize.to_dict() if self.humanize is not None else None,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PerformancePlan:
        """Build a plan from :meth:`to_dict` output."""
        humanize = data.get("humanize")
        return cls(
            performance_id=str(data["performance_id"]),
            piece_id=str(data["piece_id"]),
            soundfont=str(data["soundfont"]),
            tempo_ratio=float(data["tempo_ratio"]),
            velocity=None if data.get("velocity") is None else int(data["velocity"]),
            humanize=HumanizeSettings.from_dict(humanize) if humanize is not None else None,
            seed=int(data.get("seed", 0)),
        )

    def to_json(self) -> str:
        """Return the plan as canonical JSON (sorted keys)."""
        return json.dumps(self.to_dict(), sort_keys=True)


def plan_performances(
    piece_id: str,
    *,
    role: SplitRole,
    soundfonts: Sequence[SoundfontSpec],
    seed: int,
    recipe: PerformanceRecipe | Mapping[str, Any] = MSMD_RECIPE,
) -> list[PerformancePlan]:
    """Plan the performances of one piece.

    Deterministic: the same piece id, role, soundfont list, seed and recipe
    always give the same plans, in the same order.  The per-piece seed is
    ``derive_seed(seed, piece_id)``; each plan's seed is
    ``derive_seed(piece_seed, performance_id)``.

    Parameters
    ----------
    piece_id : str
        Id of the piece.
    role : {'train', 'valid', 'test'}
        Split role of the piece.
    soundfonts : sequence of SoundfontSpec
        The soundfont list (:func:`msmd_builder.soundfonts.load_soundfonts`);
        its order decides the reference soundfont of each role (the first).
    seed : int
        Global seed of the build.
    recipe : PerformanceRecipe or mapping, optional
        What to plan; a mapping is read with :meth:`PerformanceRecipe.from_dict`.
        Default: :data:`MSMD_RECIPE`.

    Returns
    -------
    list of PerformancePlan
        The reference performance first (when the recipe includes it), then the
        drawn ones in draw order.

    Raises
    ------
    ConfigError
        If the role is unknown or no soundfont has the role the recipe needs.
    """
    if isinstance(recipe, Mapping):
        recipe = PerformanceRecipe.from_dict(recipe)
    split = recipe.for_role(role)
    fonts = soundfonts_with_role(soundfonts, split.soundfont_role)
    _check(
        bool(fonts),
        f"recipe {recipe.name!r} needs a soundfont with role {split.soundfont_role!r} "
        f"for {role} pieces; none in {[s.name for s in soundfonts]}",
    )
    piece_seed = derive_seed(seed, piece_id)

    candidates = [(r, sf.name) for sf in fonts for r in split.tempo_ratios]
    chosen: list[tuple[float, str, bool]] = []  # (ratio, soundfont, is_reference)
    if split.include_reference:
        reference = (1.0, fonts[0].name)
        chosen.append((*reference, True))
        candidates = [c for c in candidates if (_ratio_milli(c[0]), c[1]) != (1000, reference[1])]
    if split.n_performances is not None:
        # A per-piece random draw without replacement: rank candidates by a stable hash.
        candidates = sorted(
            candidates, key=lambda c: derive_seed(piece_seed, "draw", _ratio_milli(c[0]), c[1])
        )[: max(split.n_performances - len(chosen), 0)]
    chosen.extend((r, sf, False) for r, sf in candidates)

    plans = []
    for ratio, sf_name, is_reference in chosen:
        humanize = None if is_reference else split.humanize
        perf_id = f"{piece_id}__tempo-{_ratio_milli(ratio)}__{sf_name}"
        if humanize is not None:
            perf_id += "__humanized"
        plans.append(
            PerformancePlan(
                performance_id=perf_id,
                piece_id=piece_id,
                soundfont=sf_name,
                tempo_ratio=float(ratio),
                velocity=split.velocity,
                humanize=humanize,
                seed=derive_seed(piece_seed, perf_id),
            )
        )
    return plans


# --------------------------------------------------------------------------------------
# Score time -> performance time
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TempoMap:
    """Monotone map from score seconds to performance seconds.

    ``t_perf(t) = (1 / tempo_ratio) * integral_0^t s(u) du`` where the duration
    stretch ``s`` is 1 without humanization and otherwise a PCHIP curve through
    ``(knots_sec[i], stretch[i])``, held constant beyond the last knot.  ``s`` is
    positive everywhere, so the map is strictly increasing; the integral of the
    cubic pieces is evaluated exactly.

    Attributes
    ----------
    tempo_ratio : float
        Global speed factor.
    knots_sec : tuple of float
        Knot positions in score seconds (empty for a constant tempo).
    stretch : tuple of float
        Duration stretch at each knot.
    """

    tempo_ratio: float
    knots_sec: tuple[float, ...] = ()
    stretch: tuple[float, ...] = ()

    @functools.cached_property
    def _curves(self) -> tuple[Any, Any] | None:
        if len(self.knots_sec) < 2:
            return None
        from scipy.interpolate import PchipInterpolator

        curve = PchipInterpolator(
            np.asarray(self.knots_sec), np.asarray(self.stretch), extrapolate=True
        )
        return curve, curve.antiderivative()

    def stretch_at(self, t_score_sec: npt.ArrayLike) -> np.ndarray:
        """Return the duration stretch ``s(t)`` at score times (float64 array)."""
        t = np.asarray(t_score_sec, dtype=np.float64)
        curves = self._curves
        if curves is None:
            return np.ones_like(t)
        curve, _ = curves
        lo, hi = self.knots_sec[0], self.knots_sec[-1]
        inside = curve(np.clip(t, lo, hi))
        return np.where(t < lo, self.stretch[0], np.where(t > hi, self.stretch[-1], inside))

    def local_tempo_ratio(self, t_score_sec: npt.ArrayLike) -> np.ndarray:
        """Return the instantaneous tempo ratio ``tempo_ratio / s(t)``."""
        return self.tempo_ratio / self.stretch_at(t_score_sec)

    def __call__(self, t_score_sec: npt.ArrayLike) -> np.ndarray:
        """Map score seconds to performance seconds (float64 array)."""
        t = np.asarray(t_score_sec, dtype=np.float64)
        curves = self._curves
        if curves is None:
            return t / self.tempo_ratio
        _, integral = curves
        lo, hi = self.knots_sec[0], self.knots_sec[-1]
        clipped = np.clip(t, lo, hi)
        warped = integral(clipped) - integral(lo)
        warped = warped + np.where(t > hi, (t - hi) * self.stretch[-1], 0.0)
        warped = warped + np.where(t < lo, (t - lo) * self.stretch[0], 0.0)
        return warped / self.tempo_ratio


def _knots(end_sec: float, spacing_sec: float) -> np.ndarray:
    n = max(2, int(math.ceil(max(end_sec, 0.0) / spacing_sec)) + 1)
    return np.arange(n, dtype=np.float64) * spacing_sec


def tempo_map(plan: PerformancePlan, *, end_sec: float) -> TempoMap:
    """Build the score-to-performance time map of a plan.

    Parameters
    ----------
    plan : PerformancePlan
        The performance.
    end_sec : float
        Last score time that will be mapped (the last offset), seconds; the
        knots of a humanized curve cover ``[0, end_sec]``.

    Returns
    -------
    TempoMap
        Constant tempo without humanization (or with ``max_tempo_deviation``
        0), else the humanized curve drawn from ``plan.seed``.
    """
    h = plan.humanize
    if h is None or h.max_tempo_deviation == 0.0:
        return TempoMap(tempo_ratio=plan.tempo_ratio)
    knots = _knots(end_sec, h.tempo_knot_spacing_sec)
    d = h.max_tempo_deviation
    stretch = 1.0 + _rng(plan.seed, _STREAM_TEMPO).uniform(-d, d, size=knots.size)
    if h.final_ritardando > 0:
        start = end_sec - h.ritardando_sec
        ramp = np.clip((knots - start) / h.ritardando_sec, 0.0, 1.0)
        stretch = stretch + h.final_ritardando * ramp
    stretch = np.clip(stretch, 1.0 - d, 1.0 + d)
    return TempoMap(
        tempo_ratio=plan.tempo_ratio,
        knots_sec=tuple(float(k) for k in knots),
        stretch=tuple(float(s) for s in stretch),
    )


def _as_event_table(events: np.ndarray) -> np.ndarray:
    """Return ``events`` as a PERFORMED_EVENT_DTYPE table (a copy), validated."""
    arr = np.asarray(events)
    if arr.dtype.names is None or not set(PERFORMED_EVENT_DTYPE.names or ()) <= set(
        arr.dtype.names
    ):
        raise ConfigError(
            f"events must be a structured array with the fields of PERFORMED_EVENT_DTYPE, "
            f"got dtype {arr.dtype}"
        )
    if arr.ndim != 1:
        raise ConfigError(f"events must be one-dimensional, got shape {arr.shape}")
    table = empty_performed_events(arr.shape[0])
    for name in PERFORMED_EVENT_DTYPE.names or ():
        table[name] = arr[name]
    on, off = table["onset_sec"], table["offset_sec"]
    if not (np.all(np.isfinite(on)) and np.all(np.isfinite(off))):
        raise SynthesisError("events have non-finite onset_sec or offset_sec")
    if np.any(on < 0):
        raise SynthesisError("events have negative onset_sec")
    if np.any(off < on):
        raise SynthesisError("events have offset_sec < onset_sec")
    if np.any((table["pitch"] < 0) | (table["pitch"] > 127)):
        raise SynthesisError("events have pitches outside 0..127")
    return table


def _pchip_curve(
    rng: np.random.Generator, t: np.ndarray, end_sec: float, spacing: float, amp: float
) -> np.ndarray:
    from scipy.interpolate import PchipInterpolator

    knots = _knots(end_sec, spacing)
    values = rng.uniform(-amp, amp, size=knots.size)
    return PchipInterpolator(knots, values)(np.clip(t, knots[0], knots[-1]))


def _onset_groups(onset_sec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (sorted unique onsets, group index of each note); equal within 1 ns."""
    keys = np.round(onset_sec, 9)
    unique, inverse = np.unique(keys, return_inverse=True)
    return unique, inverse


def _realize(plan: PerformancePlan, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    table = _as_event_table(events)
    n = table.shape[0]
    on, off = table["onset_sec"].copy(), table["offset_sec"].copy()
    end_sec = float(off.max()) if n else 0.0
    tmap = tempo_map(plan, end_sec=end_sec)
    on_perf, off_perf = tmap(on), tmap(off)
    h = plan.humanize

    if h is not None and h.max_asynchrony_sec > 0 and n:
        _, group = _onset_groups(on)
        shift = _rng(plan.seed, _STREAM_ASYNCHRONY).uniform(
            -h.max_asynchrony_sec, h.max_asynchrony_sec, size=n
        )
        shift[np.bincount(group)[group] == 1] = 0.0
        on_perf = np.maximum(on_perf + shift, 0.0)
    off_perf = np.maximum(off_perf, on_perf + _MIN_DURATION_SEC)

    if plan.velocity is not None:
        velocity = np.full(n, float(plan.velocity))
    else:
        velocity = table["velocity"].astype(np.float64)
    if h is not None and n and (h.velocity_range > 0 or h.velocity_jitter > 0):
        rng = _rng(plan.seed, _STREAM_VELOCITY)
        velocity = velocity + _pchip_curve(
            rng, on, end_sec, h.velocity_knot_spacing_sec, float(h.velocity_range)
        )
        velocity = velocity + rng.integers(
            -h.velocity_jitter, h.velocity_jitter, size=n, endpoint=True
        )
    table["velocity"] = np.clip(np.rint(velocity), 1, 127).astype(np.int16)
    table["onset_sec"] = on_perf
    table["offset_sec"] = off_perf

    pedal = np.zeros(0, dtype=PEDAL_EVENT_DTYPE)
    if h is not None and h.sustain_pedal and n:
        pedal = _pedal_events(h, tmap, on, table["onset_whole"], float(off_perf.max()))
    return table, pedal


def _pedal_events(
    h: HumanizeSettings,
    tmap: TempoMap,
    onset_score_sec: np.ndarray,
    onset_whole: np.ndarray,
    end_perf_sec: float,
) -> np.ndarray:
    unique_on, group = _onset_groups(onset_score_sec)
    group_whole = np.full(unique_on.size, np.inf)
    np.minimum.at(group_whole, group, onset_whole)
    span = np.floor(group_whole / h.pedal_change_whole + 1e-9)
    change = np.ones(unique_on.size, dtype=bool)
    change[1:] = span[1:] != span[:-1]
    change_perf = tmap(unique_on[change])
    times: list[float] = []
    values: list[int] = []
    last_down = -math.inf
    for i, t in enumerate(change_perf):
        t = float(t)
        if i > 0:
            if t < last_down + h.pedal_lift_sec:
                continue  # too close to the previous change: keep the pedal down
            times.append(t)
            values.append(0)
        down = t + h.pedal_lift_sec
        if down >= end_perf_sec:
            break
        times.append(down)
        values.append(127)
        last_down = down
    if values and values[-1] == 127:
        times.append(max(end_perf_sec, times[-1] + _MIN_DURATION_SEC))
        values.append(0)
    pedal = np.zeros(len(times), dtype=PEDAL_EVENT_DTYPE)
    pedal["time_sec"] = times
    pedal["value"] = values
    return pedal


def realize(plan: PerformancePlan, events: np.ndarray) -> np.ndarray:
    """Return the performance's note events: times and velocities as performed.

    Parameters
    ----------
    plan : PerformancePlan
        The performance.
    events : np.ndarray [shape=(n,), dtype=PERFORMED_EVENT_DTYPE]
        The piece's events at tempo ratio 1.0 (``onset_sec``/``offset_sec`` in
        score seconds), in playing order.

    Returns
    -------
    np.ndarray [shape=(n,), dtype=PERFORMED_EVENT_DTYPE]
        A new table, same rows in the same order, with ``onset_sec`` and
        ``offset_sec`` in performance seconds (``t / tempo_ratio`` through the
        tempo map, plus chord asynchrony when humanized) and ``velocity`` set
        (fixed, kept, or humanized, always clipped to 1..127).  Offsets are at
        least 1 ms after onsets.  All other fields are copied.

    Raises
    ------
    SynthesisError
        If the events have non-finite or negative times, offsets before onsets,
        or pitches outside 0..127.
    """
    return _realize(plan, events)[0]


def realize_pedal(plan: PerformancePlan, events: np.ndarray) -> np.ndarray:
    """Return the performance's sustain-pedal events (empty unless humanized with pedal).

    Parameters
    ----------
    plan : PerformancePlan
        The performance.
    events : np.ndarray [dtype=PERFORMED_EVENT_DTYPE]
        The piece's events at tempo ratio 1.0 (uses ``onset_sec`` and ``onset_whole``).

    Returns
    -------
    np.ndarray [shape=(n_pedal,), dtype=PEDAL_EVENT_DTYPE]
        Time-sorted, alternating down (127) / up (0), ending with up.
    """
    return _realize(plan, events)[1]


def _grid_samples(t_sec: np.ndarray, sample_rate: int) -> np.ndarray:
    block = RENDER_BLOCK_SAMPLES
    return (np.rint(np.asarray(t_sec, dtype=np.float64) * sample_rate / block) * block).astype(
        np.int64
    )


def snap_to_render_grid(table: np.ndarray, *, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Move event times to the nearest multiple of 64 samples.

    FluidSynth renders in 64-sample blocks and applies a note-on, note-off or
    controller change only at the start of the next block, so an event at
    sample ``k`` sounds from ``ceil(k / 64) * 64``.  Snapping first (to the
    nearest block boundary: at most 32 samples, 1.45 ms at 22,050 Hz) makes the
    stored times exactly the times at which the audio changes.

    Parameters
    ----------
    table : np.ndarray
        A PERFORMED_EVENT_DTYPE table (``onset_sec``/``offset_sec`` are snapped;
        offsets are kept at least one block after their onsets) or a
        PEDAL_EVENT_DTYPE table (``time_sec`` is snapped).
    sample_rate : int, optional
        Sample rate of the synthesis, Hz.

    Returns
    -------
    np.ndarray
        A snapped copy; times are ``k * 64 / sample_rate`` exactly.
    """
    out = np.array(table, copy=True)
    names = out.dtype.names or ()
    if "onset_sec" in names:
        on = _grid_samples(out["onset_sec"], sample_rate)
        off = np.maximum(_grid_samples(out["offset_sec"], sample_rate), on + RENDER_BLOCK_SAMPLES)
        out["onset_sec"] = on / sample_rate
        out["offset_sec"] = off / sample_rate
    elif "time_sec" in names:
        out["time_sec"] = _grid_samples(out["time_sec"], sample_rate) / sample_rate
    else:
        raise ConfigError(f"cannot snap a table with fields {names}")
    return out


# --------------------------------------------------------------------------------------
# FluidSynth
# --------------------------------------------------------------------------------------


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

    def __post_init__(self) -> None:
        _check(self.gain > 0, "gain must be > 0")
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
        """Return the settings as a JSON-serialisable dict."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


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
    tail = int(round(settings.tail_sec * sample_rate))
    n_out = (int(sample[-1]) if sample.size else 0) + tail
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


def _synth_kwargs(settings: SynthSettings, sample_rate: int) -> dict[str, Any]:
    fluid = settings.fluid_settings(sample_rate)
    kwargs: dict[str, Any] = {
        "gain": fluid.pop("synth.gain"),
        "samplerate": fluid.pop("synth.sample-rate"),
        "channels": fluid.pop("synth.midi-channels"),
    }
    kwargs.update(fluid)
    return kwargs


# --------------------------------------------------------------------------------------
# Onset verification
# --------------------------------------------------------------------------------------


def onset_strength(
    audio: npt.ArrayLike,
    *,
    sample_rate: int = SAMPLE_RATE,
    frame_size: int = 1024,
    hop_samples: int = 128,
) -> tuple[np.ndarray, np.ndarray]:
    """Spectral-flux onset strength of mono audio.

    Centred Hann-windowed STFT frames, magnitude compressed as
    ``log1p(1000 * |X| / peak)`` (``peak`` = the audio's maximum absolute
    value, so the result does not depend on the level), then the half-wave
    rectified increase of each bin over the maximum of its three neighbours in
    the previous frame (a light SuperFlux, which ignores the chorus and
    vibrato wobble), summed over bins.

    Parameters
    ----------
    audio : array_like [shape=(n,)]
        Mono audio.
    sample_rate : int, optional
        Hz.
    frame_size : int, optional
        STFT frame length, samples (46 ms at 22,050 Hz).
    hop_samples : int, optional
        STFT hop, samples (5.8 ms at 22,050 Hz).

    Returns
    -------
    strength : np.ndarray [shape=(n_frames,), dtype=float64]
        Onset strength per frame (0 for the first frame).
    times_sec : np.ndarray [shape=(n_frames,), dtype=float64]
        Centre of each frame, seconds.
    """
    from scipy.ndimage import maximum_filter1d

    x = np.asarray(audio, dtype=np.float64).ravel()
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    n_frames = x.size // hop_samples + 1
    times = np.arange(n_frames) * hop_samples / sample_rate
    if peak == 0.0:
        return np.zeros(n_frames), times
    x = x / peak
    half = frame_size // 2
    padded = np.pad(x, (half, half + hop_samples))
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame_size)[::hop_samples][:n_frames]
    window = np.hanning(frame_size)
    strength = np.zeros(n_frames)
    previous: np.ndarray | None = None
    block = 2048
    for start in range(0, n_frames, block):
        spec = np.log1p(1000.0 * np.abs(np.fft.rfft(frames[start : start + block] * window)))
        ref = maximum_filter1d(spec, size=3, axis=1)
        if previous is None:
            diff = spec[1:] - ref[:-1]
            strength[start + 1 : start + spec.shape[0]] = np.maximum(diff, 0.0).sum(axis=1)
        else:
            diff = spec - np.vstack([previous, ref[:-1]])
            strength[start : start + spec.shape[0]] = np.maximum(diff, 0.0).sum(axis=1)
        previous = ref[-1:]
    return strength, times


def detect_onsets(
    audio: npt.ArrayLike,
    *,
    sample_rate: int = SAMPLE_RATE,
    hop_samples: int = 128,
    window_sec: float = 0.02,
    average_sec: float = 0.05,
    threshold: float = 0.05,
) -> np.ndarray:
    """Detect onsets in mono audio by peak-picking :func:`onset_strength`.

    A frame is an onset if its strength is the maximum within ``window_sec``
    on either side and exceeds the mean strength within ``average_sec`` on
    either side by ``threshold`` times the 99th percentile of the strength.

    Parameters
    ----------
    audio : array_like [shape=(n,)]
        Mono audio.
    sample_rate : int, optional
        Hz.
    hop_samples : int, optional
        Hop of the onset strength, samples.
    window_sec : float, optional
        Half-width of the local-maximum window, seconds.
    average_sec : float, optional
        Half-width of the moving average, seconds.
    threshold : float, optional
        Relative height above the moving average.

    Returns
    -------
    np.ndarray [shape=(n_onsets,), dtype=float64]
        Onset times, seconds, sorted.
    """
    from scipy.ndimage import maximum_filter1d, uniform_filter1d

    strength, times = onset_strength(audio, sample_rate=sample_rate, hop_samples=hop_samples)
    if not np.any(strength > 0):
        return np.zeros(0)
    frames_per_sec = sample_rate / hop_samples
    w = max(1, int(round(window_sec * frames_per_sec)))
    m = max(1, int(round(average_sec * frames_per_sec)))
    local_max = maximum_filter1d(strength, size=2 * w + 1, mode="constant")
    mean = uniform_filter1d(strength, size=2 * m + 1, mode="constant")
    delta = threshold * float(np.percentile(strength, 99))
    is_peak = (strength == local_max) & (strength > mean + delta) & (strength > 0)
    return times[np.flatnonzero(is_peak)]


@dataclass(frozen=True)
class OnsetCheck:
    """Result of :func:`verify_onsets`.

    Attributes
    ----------
    n_onsets : int
        Recorded onsets after grouping simultaneous ones.
    n_matched : int
        How many have a detected onset within ``tolerance_sec``.
    fraction_within_frame : float
        ``n_matched / n_onsets`` (1.0 when there are no onsets).
    tolerance_sec : float
        The tolerance, seconds (one frame at 20 fps by default).
    n_detected : int
        Onsets detected in the audio.
    n_detected_matched : int
        Detected onsets within ``tolerance_sec`` of a recorded onset (the rest
        are spurious detections: reverberation, re-attacks, analysis noise).
    median_error_sec : float
        Median signed error (detected - recorded) of the matched onsets.
    unmatched_sec : tuple of float
        Up to 20 recorded onset times with no detection nearby.
    """

    n_onsets: int
    n_matched: int
    fraction_within_frame: float
    tolerance_sec: float
    n_detected: int
    n_detected_matched: int
    median_error_sec: float
    unmatched_sec: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a JSON-serialisable dict."""
        d = {name: getattr(self, name) for name in self.__dataclass_fields__}
        d["unmatched_sec"] = list(self.unmatched_sec)
        return d


def verify_onsets(
    audio: npt.ArrayLike,
    events: np.ndarray,
    *,
    sample_rate: int = SAMPLE_RATE,
    tolerance_sec: float = 1.0 / FPS,
    group_sec: float = 0.03,
) -> OnsetCheck:
    """Check that the audio has an onset at every recorded onset.

    An independent check of the synthesis: onsets are detected in the audio
    alone (:func:`detect_onsets`), recorded onsets closer than ``group_sec``
    are grouped (a chord, or an arpeggio the analysis cannot resolve) into
    one at the group's first onset, and each group counts as matched if a
    detected onset lies within ``tolerance_sec`` (one spectrogram frame at
    20 fps) of it.

    Parameters
    ----------
    audio : array_like [shape=(n,)]
        Mono audio.
    events : np.ndarray
        A table with an ``onset_sec`` field, or a 1-D array of onset times,
        in seconds of ``audio``.
    sample_rate : int, optional
        Hz.
    tolerance_sec : float, optional
        Largest accepted distance, seconds.
    group_sec : float, optional
        Recorded onsets closer than this are one onset, seconds.

    Returns
    -------
    OnsetCheck
        The counts and the fraction within tolerance.
    """
    arr = np.asarray(events)
    onsets = arr["onset_sec"] if arr.dtype.names else arr
    onsets = np.sort(np.asarray(onsets, dtype=np.float64).ravel())
    groups: list[float] = []
    previous = -math.inf
    for t in onsets.tolist():
        if t - previous > group_sec:
            groups.append(t)
        previous = t
    detected = detect_onsets(audio, sample_rate=sample_rate)
    if not groups:
        return OnsetCheck(0, 0, 1.0, tolerance_sec, int(detected.size), 0, 0.0, ())
    g = np.asarray(groups)
    if detected.size == 0:
        return OnsetCheck(g.size, 0, 0.0, tolerance_sec, 0, 0, math.nan, tuple(g[:20].tolist()))
    error = _nearest(detected, g) - g
    matched = np.abs(error) <= tolerance_sec + 1e-9
    n_matched = int(matched.sum())
    explained = np.abs(_nearest(g, detected) - detected) <= tolerance_sec + 1e-9
    return OnsetCheck(
        n_onsets=int(g.size),
        n_matched=n_matched,
        fraction_within_frame=n_matched / g.size,
        tolerance_sec=tolerance_sec,
        n_detected=int(detected.size),
        n_detected_matched=int(explained.sum()),
        median_error_sec=float(np.median(error[matched])) if n_matched else math.nan,
        unmatched_sec=tuple(float(t) for t in g[~matched][:20]),
    )


def _nearest(sorted_values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Return, for each query, the nearest element of a non-empty sorted array."""
    if sorted_values.size == 1:
        return np.full_like(queries, sorted_values[0])
    idx = np.clip(np.searchsorted(sorted_values, queries), 1, sorted_values.size - 1)
    left, right = sorted_values[idx - 1], sorted_values[idx]
    return np.where(np.abs(queries - left) <= np.abs(right - queries), left, right)


# --------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PerformanceResult:
    """What :func:`perform_piece` did for one performance.

    Attributes
    ----------
    performance_id : str
        Id of the performance.
    path : Path
        The ``.npz`` file.
    audio_path : Path or None
        The ``.flac`` file, when audio was kept.
    skipped : bool
        True if an up-to-date file existed and nothing was rendered.
    cache_key : str
        The performance's cache key.
    n_frames : int
        Spectrogram frames.
    duration_sec : float
        Audio duration, seconds.
    onset_fraction : float or None
        :attr:`OnsetCheck.fraction_within_frame` (None if not verified).
    seconds : dict
        Wall-clock seconds spent in ``synthesis``, ``spectrogram`` and
        ``onset_check`` (empty when skipped).
    """

    performance_id: str
    path: Path
    audio_path: Path | None
    skipped: bool
    cache_key: str
    n_frames: int
    duration_sec: float
    onset_fraction: float | None
    seconds: dict[str, float] = field(default_factory=dict)


def _events_sha256(events: np.ndarray) -> str:
    data = np.ascontiguousarray(events)
    return sha256_bytes(str(data.dtype.descr).encode() + b"\0" + data.tobytes())


def performance_cache_key(
    plan: PerformancePlan,
    events: np.ndarray,
    *,
    soundfont: SoundfontSpec,
    soundfont_sha256: str,
    settings: SynthSettings,
    sample_rate: int = SAMPLE_RATE,
    verify: bool = True,
) -> str:
    """Return the cache key of one performance file.

    The key hashes the input events' bytes, the plan, the soundfont (name,
    preset, the file's SHA-256), the synthesis settings and sample rate,
    whether onsets are verified, the file format version and the versions of
    msmd-builder, numpy, scipy, libfluidsynth and pyfluidsynth.

    Returns
    -------
    str
        Hex SHA-256 (:func:`msmd_builder.cache.stable_key`).
    """
    import scipy

    from msmd_builder import __version__

    fl = _fluid()
    return stable_key(
        {
            "stage": "perform",
            "format_version": FORMAT_VERSION,
            "events_sha256": _events_sha256(events),
            "plan": plan.to_dict(),
            "soundfont": {
                "name": soundfont.name,
                "bank": soundfont.bank,
                "program": soundfont.program,
                "sha256": soundfont_sha256,
            },
            "synth": settings.to_dict(),
            "sample_rate": sample_rate,
            "verify": verify,
            "versions": {
                "msmd_builder": __version__,
                "numpy": np.__version__,
                "scipy": scipy.__version__,
                "libfluidsynth": fl.version,
                "pyfluidsynth": getattr(fl.module, "api_version", "unknown"),
            },
        }
    )


def _stored_key(path: Path) -> str | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            return str(data["cache_key"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError):
        return None


def _result_from_file(
    path: Path, audio_path: Path | None, key: str, perf_id: str
) -> PerformanceResult:
    with np.load(path, allow_pickle=False) as data:
        fraction = float(data["onset_check_fraction"])
        return PerformanceResult(
            performance_id=perf_id,
            path=path,
            audio_path=audio_path,
            skipped=True,
            cache_key=key,
            n_frames=int(data["spectrogram"].shape[1]),
            duration_sec=float(data["duration_sec"]),
            onset_fraction=None if math.isnan(fraction) else fraction,
        )


def perform_piece(
    plans: Iterable[PerformancePlan],
    events: np.ndarray,
    *,
    out_dir: str | os.PathLike[str],
    keep_audio: bool = False,
    soundfonts: Sequence[SoundfontSpec] | None = None,
    settings: SynthSettings | None = None,
    cache: SoundfontCache | None = None,
    verify: bool | Collection[str] = True,
    sample_rate: int = SAMPLE_RATE,
) -> list[PerformanceResult]:
    """Render a piece's performances and write one ``.npz`` per performance.

    For each plan: realize the events (:func:`realize`, :func:`realize_pedal`),
    snap them to the render grid, synthesize, compute the spectrogram and the
    onset frames, optionally verify onsets, and write
    ``<out_dir>/<performance_id>.npz`` atomically (layout in the module
    docstring).  A performance whose file exists with the same cache key
    (:func:`performance_cache_key`) -- and, with ``keep_audio``, whose FLAC
    exists -- is skipped.

    Parameters
    ----------
    plans : iterable of PerformancePlan
        The piece's performances (:func:`plan_performances`); ids must be unique.
    events : np.ndarray [shape=(n,), dtype=PERFORMED_EVENT_DTYPE]
        The piece's events at tempo ratio 1.0, score seconds.
    out_dir : path-like
        Directory for the files (created if needed).
    keep_audio : bool, optional
        Also write ``<performance_id>.flac`` (16-bit, mono).
    soundfonts : sequence of SoundfontSpec, optional
        Soundfont list; default :func:`msmd_builder.soundfonts.load_soundfonts`.
    settings : SynthSettings, optional
        Synthesis settings; default :class:`SynthSettings`.
    cache : SoundfontCache, optional
        Loaded soundfonts; default :func:`default_soundfont_cache`.
    verify : bool or collection of str, optional
        Run :func:`verify_onsets` and store the fraction: for every
        performance (True), none (False) or the performances whose ids are
        given.
    sample_rate : int, optional
        Hz.

    Returns
    -------
    list of PerformanceResult
        One per plan, in order.

    Raises
    ------
    ConfigError
        Duplicate performance ids, an unknown soundfont, or a soundfont file
        whose SHA-256 differs from the soundfont list.
    ToolNotFoundError
        A soundfont file or libfluidsynth is missing.
    SynthesisError
        The events are invalid or FluidSynth failed (a per-piece error).
    """
    plans = list(plans)
    ids = [p.performance_id for p in plans]
    _check(len(set(ids)) == len(ids), f"duplicate performance ids: {ids}")
    specs = list(soundfonts) if soundfonts is not None else load_soundfonts()
    settings = settings if settings is not None else SynthSettings()
    cache = cache if cache is not None else default_soundfont_cache()
    table = _as_event_table(events)
    if table.size == 0:
        raise SynthesisError("the piece has no performed events to synthesize")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    results: list[PerformanceResult] = []
    for plan in plans:
        check_onsets = verify if isinstance(verify, bool) else plan.performance_id in verify
        spec = find_soundfont(specs, plan.soundfont)
        sf_path = locate(spec)
        sf_sha = cache.sha256(sf_path)
        if sf_sha != spec.sha256:
            raise ConfigError(
                f"soundfont {spec.name!r}: {sf_path} has SHA-256 {sf_sha}, the soundfont list "
                f"expects {spec.sha256}; run `msmd-build soundfonts check`"
            )
        key = performance_cache_key(
            plan,
            table,
            soundfont=spec,
            soundfont_sha256=sf_sha,
            settings=settings,
            sample_rate=sample_rate,
            verify=check_onsets,
        )
        npz_path = out / f"{plan.performance_id}.npz"
        flac_path = out / f"{plan.performance_id}.flac"
        audio_path = flac_path if keep_audio else None
        if _stored_key(npz_path) == key and (not keep_audio or flac_path.is_file()):
            results.append(_result_from_file(npz_path, audio_path, key, plan.performance_id))
            continue

        performed, pedal = _realize(plan, table)
        performed = snap_to_render_grid(performed, sample_rate=sample_rate)
        pedal = snap_to_render_grid(pedal, sample_rate=sample_rate)
        started = time.perf_counter()
        audio = synthesize(
            performed,
            soundfont_path=sf_path,
            bank=spec.bank,
            program=spec.program,
            sample_rate=sample_rate,
            settings=settings,
            pedal=pedal,
            cache=cache,
        )
        seconds = {"synthesis": time.perf_counter() - started}
        started = time.perf_counter()
        spectrogram = np.asarray(
            compute_spectrogram(audio, sample_rate=sample_rate), dtype=np.float32
        )
        seconds["spectrogram"] = time.perf_counter() - started
        onset_frame = np.asarray(sec_to_frame(performed["onset_sec"]), dtype=np.int64)
        started = time.perf_counter()
        check = verify_onsets(audio, performed, sample_rate=sample_rate) if check_onsets else None
        seconds["onset_check"] = time.perf_counter() - started
        fraction = check.fraction_within_frame if check is not None else math.nan
        duration_sec = audio.size / sample_rate
        synth_doc = {"settings": settings.to_dict(), "soundfont": spec.to_dict()}
        arrays: dict[str, Any] = {
            "format_name": np.array(FORMAT_NAME),
            "format_version": np.int64(FORMAT_VERSION),
            "performance_id": np.array(plan.performance_id),
            "piece_id": np.array(plan.piece_id),
            "plan_json": np.array(plan.to_json()),
            "synth_json": np.array(json.dumps(synth_doc, sort_keys=True)),
            "cache_key": np.array(key),
            "sample_rate": np.int64(sample_rate),
            "n_samples": np.int64(audio.size),
            "duration_sec": np.float64(duration_sec),
            "spectrogram": spectrogram,
            "events": performed,
            "onset_frame": onset_frame,
            "pedal": pedal,
            "onset_check_fraction": np.float64(fraction),
        }
        if keep_audio:
            _write_flac(flac_path, audio, sample_rate)
        with atomic_path(npz_path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        results.append(
            PerformanceResult(
                performance_id=plan.performance_id,
                path=npz_path,
                audio_path=audio_path,
                skipped=False,
                cache_key=key,
                n_frames=int(spectrogram.shape[1]),
                duration_sec=duration_sec,
                onset_fraction=None if check is None else fraction,
                seconds=seconds,
            )
        )
    return results


def _write_flac(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    import soundfile

    with atomic_path(path) as tmp:
        soundfile.write(str(tmp), audio, sample_rate, format="FLAC", subtype="PCM_16")


def load_performance(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a performance file written by :func:`perform_piece`.

    Parameters
    ----------
    path : path-like
        ``<performance_id>.npz``.

    Returns
    -------
    dict
        The arrays of the file (scalars as Python numbers, strings as ``str``),
        with ``plan`` (a :class:`PerformancePlan`) and ``synth`` (a dict) parsed
        from their JSON.

    Raises
    ------
    ConfigError
        If the file is not a performance file of a known format version.
    """
    with np.load(path, allow_pickle=False) as data:
        out: dict[str, Any] = {}
        for name in data.files:
            value = data[name]
            if value.ndim == 0 and value.dtype.names is None:
                value = value.item()
            out[name] = value
    if out.get("format_name") != FORMAT_NAME:
        raise ConfigError(f"{path} is not a {FORMAT_NAME} file")
    if out.get("format_version") != FORMAT_VERSION:
        raise ConfigError(
            f"{path} has format_version {out.get('format_version')}, expected {FORMAT_VERSION}"
        )
    out["plan"] = PerformancePlan.from_dict(json.loads(out["plan_json"]))
    out["synth"] = json.loads(out["synth_json"])
    return out


# --------------------------------------------------------------------------------------
# The pipeline stage: every role's performances of one aligned piece
# --------------------------------------------------------------------------------------

#: Which performances get the (independent) onset check in a dataset build.
VERIFY_CHOICES = ("all", "reference", "none")


def plan_piece(
    piece_id: str,
    *,
    soundfonts: Sequence[SoundfontSpec],
    seed: int,
    recipe: PerformanceRecipe | Mapping[str, Any] = MSMD_RECIPE,
) -> tuple[list[PerformancePlan], dict[str, list[str]]]:
    """Plan the performances of every split role of one piece.

    A piece may be train material in one split and test material in another
    (``bach-only`` against ``bach-out``), so the build renders the union of
    the roles' plans once; a split then only selects.  Plans of different
    roles that share an id (MSMD's train and valid recipes are the same) are
    rendered once.

    Returns
    -------
    plans : list of PerformancePlan
        Distinct plans, in role order (train, valid, test), each role's plans
        in :func:`plan_performances` order.
    roles : dict
        Role -> performance ids of that role.

    Raises
    ------
    ConfigError
        If two roles plan different performances under the same id.
    """
    plans: dict[str, PerformancePlan] = {}
    roles: dict[str, list[str]] = {}
    for role in _SPLIT_ROLES:
        role_plans = plan_performances(
            piece_id, role=role, soundfonts=soundfonts, seed=seed, recipe=recipe
        )
        roles[role] = [p.performance_id for p in role_plans]
        for plan in role_plans:
            known = plans.setdefault(plan.performance_id, plan)
            _check(known == plan, f"roles plan {plan.performance_id} differently")
    return list(plans.values()), roles


@dataclass(frozen=True)
class PerformStageResult:
    """What the perform stage wrote for one piece (``perform/perform.json``).

    Attributes
    ----------
    piece_id : str
        The piece.
    perform_dir : Path
        ``<work>/pieces/<piece_id>/perform``.
    roles : dict
        Split role -> ids of the performances that role uses.
    performances : list of PerformanceResult
        One per distinct plan.
    plans : list of PerformancePlan
        The plans, in the order of ``performances``.
    """

    piece_id: str
    perform_dir: Path
    roles: dict[str, list[str]]
    performances: list[PerformanceResult]
    plans: list[PerformancePlan]

    @property
    def seconds(self) -> dict[str, float]:
        """Seconds per sub-step (synthesis, spectrogram, onset_check), summed."""
        total: dict[str, float] = {}
        for result in self.performances:
            for name, sec in result.seconds.items():
                total[name] = total.get(name, 0.0) + sec
        return total

    def summary(self) -> list[dict[str, Any]]:
        """One JSON-friendly row per performance, for reports."""
        return [
            {
                "performance_id": r.performance_id,
                "tempo_ratio": p.tempo_ratio,
                "soundfont": p.soundfont,
                "humanized": p.humanize is not None,
                "duration_sec": round(r.duration_sec, 3),
                "n_frames": r.n_frames,
                "onset_fraction": r.onset_fraction,
                "seconds": {k: round(v, 4) for k, v in r.seconds.items()},
            }
            for r, p in zip(self.performances, self.plans, strict=True)
        ]


def perform_stage(
    piece_id: str,
    events: np.ndarray,
    *,
    work_dir: str | os.PathLike[str],
    seed: int = 0,
    recipe: PerformanceRecipe | Mapping[str, Any] = MSMD_RECIPE,
    keep_audio: bool = False,
    verify: str = "reference",
    soundfonts: Sequence[SoundfontSpec] | None = None,
) -> PerformStageResult:
    """Render every role's performances of an aligned piece and index them.

    Writes ``<work>/pieces/<piece_id>/perform/<performance_id>.npz`` (see
    :func:`perform_piece`, which skips performances already up to date) and
    ``perform.json``: piece id, seed, recipe, ``roles`` (role -> performance
    ids) and one entry per performance (file, audio file or null, plan,
    cache key, duration, frames, onset-check fraction).  Files of
    performances no longer planned are removed, so a changed plan leaves no
    stale audio behind.

    Parameters
    ----------
    piece_id : str
        The piece.
    events : np.ndarray [dtype=PERFORMED_EVENT_DTYPE]
        Its aligned performed events (``align/alignment.npz``), score seconds.
    work_dir : path-like
        The build's work directory.
    seed : int, optional
        The build's seed.
    recipe : PerformanceRecipe or mapping, optional
        Performance recipe; default MSMD's.
    keep_audio : bool, optional
        Also write FLAC files.
    verify : {'all', 'reference', 'none'}, optional
        Which performances get :func:`verify_onsets`: all, the first of each
        role (the reference rendering of train/valid and the test rendering),
        or none.
    soundfonts : sequence of SoundfontSpec, optional
        Default :func:`load_soundfonts`.
    """
    _check(verify in VERIFY_CHOICES, f"verify must be one of {VERIFY_CHOICES}, got {verify!r}")
    specs = list(soundfonts) if soundfonts is not None else load_soundfonts()
    if isinstance(recipe, Mapping):
        recipe = PerformanceRecipe.from_dict(recipe)
    plans, roles = plan_piece(piece_id, soundfonts=specs, seed=seed, recipe=recipe)
    if verify == "all":
        to_verify: bool | set[str] = True
    elif verify == "none":
        to_verify = False
    else:
        to_verify = {ids[0] for ids in roles.values() if ids}
    out = Path(work_dir) / "pieces" / piece_id / "perform"
    results = perform_piece(
        plans, events, out_dir=out, keep_audio=keep_audio, soundfonts=specs, verify=to_verify
    )
    keep = {f"{p.performance_id}{ext}" for p in plans for ext in (".npz", ".flac")}
    for stale in [*out.glob("*.npz"), *out.glob("*.flac")]:
        if stale.name not in keep:
            stale.unlink()
    if not keep_audio:
        for plan in plans:
            (out / f"{plan.performance_id}.flac").unlink(missing_ok=True)
    stage = PerformStageResult(piece_id, out, roles, results, plans)
    document = {
        "piece_id": piece_id,
        "seed": seed,
        "recipe": recipe.to_dict(),
        "roles": roles,
        "performances": [
            {
                "performance_id": r.performance_id,
                "file": r.path.name,
                "audio": r.audio_path.name if r.audio_path is not None else None,
                "plan": p.to_dict(),
                "cache_key": r.cache_key,
                "duration_sec": r.duration_sec,
                "n_frames": r.n_frames,
                "onset_fraction": r.onset_fraction,
            }
            for r, p in zip(results, plans, strict=True)
        ],
    }
    atomic_write_json(out / "perform.json", document)
    return stage
