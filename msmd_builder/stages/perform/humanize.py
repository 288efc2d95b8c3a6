"""How a humanized performance departs from the score: :class:`HumanizeSettings`.

:mod:`msmd_builder.stages.perform.plans` puts these settings into performance
plans; :mod:`msmd_builder.stages.perform.realize` applies them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from msmd_builder.core.errors import ConfigError

__all__ = ["HumanizeSettings"]


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
