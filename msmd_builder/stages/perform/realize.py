"""Score time to performance time: tempo maps, humanization, pedal, the render grid.

:func:`realize` maps score-time events to performance time: a tempo ratio ``r``
makes the performance ``r`` times as fast (``t_perf = t_score / r``); an optional
:class:`~msmd_builder.stages.perform.plans.HumanizeSettings` adds a smooth,
bounded local tempo curve, dynamics, chord asynchrony and sustain pedal
(:func:`realize_pedal`).  The mapping is monotone and evaluated exactly, so every
note's performance onset and offset are known.  :func:`snap_to_render_grid` then
moves every event to FluidSynth's 64-sample rendering grid (at most 1.45 ms at
22,050 Hz): FluidSynth starts a note only at the beginning of one of its 64-sample
blocks, so this is the only way the stored times can equal the times at which
notes sound, sample for sample.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from msmd_builder.core.errors import ConfigError, SynthesisError
from msmd_builder.core.tables import (
    PEDAL_EVENT_DTYPE,
    PERFORMED_EVENT_DTYPE,
    empty_performed_events,
)
from msmd_builder.core.units import SAMPLE_RATE
from msmd_builder.stages.perform.plans import (
    _STREAM_ASYNCHRONY,
    _STREAM_TEMPO,
    _STREAM_VELOCITY,
    HumanizeSettings,
    PerformancePlan,
    _rng,
)

__all__ = [
    "RENDER_BLOCK_SAMPLES",
    "TempoMap",
    "tempo_map",
    "realize",
    "realize_pedal",
    "snap_to_render_grid",
    "realize_on_grid",
]


#: FluidSynth renders in blocks of this many samples (``FLUID_BUFSIZE``) and
#: starts or stops notes only at block boundaries.
RENDER_BLOCK_SAMPLES = 64


_MIN_DURATION_SEC = 0.001


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


def realize_on_grid(
    plan: PerformancePlan, events: np.ndarray, *, sample_rate: int = SAMPLE_RATE
) -> tuple[np.ndarray, np.ndarray]:
    """Return a plan's notes and pedal events as synthesis plays them: realized, on the grid.

    What :func:`~msmd_builder.stages.perform.stage.perform_piece` renders and
    stores for each plan (:func:`realize`, :func:`realize_pedal` and
    :func:`snap_to_render_grid`).
    """
    performed, pedal = _realize(plan, events)
    return (
        snap_to_render_grid(performed, sample_rate=sample_rate),
        snap_to_render_grid(pedal, sample_rate=sample_rate),
    )
