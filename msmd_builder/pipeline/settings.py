"""The settings of a build: one frozen settings object per stage, nested once.

Every stage reads only its own settings (``settings.render`` for the render
stage, ...); the orchestrator passes each stage its part and nothing is unpacked
field by field.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from msmd_builder.core.errors import ConfigError
from msmd_builder.lilypond.sandbox import DEFAULT_CPU_SEC, DEFAULT_MEMORY_MB, SandboxSettings
from msmd_builder.stages import STAGE_NAMES
from msmd_builder.stages.align.stage import AlignSettings
from msmd_builder.stages.normalize import NormalizeSettings
from msmd_builder.stages.perform.fluidsynth import SynthSettings
from msmd_builder.stages.perform.plans import MSMD_RECIPE, PerformanceRecipe
from msmd_builder.stages.perform.stage import PerformSettings
from msmd_builder.stages.render import DEFAULT_TIMEOUT_SEC, RenderSettings
from msmd_builder.stages.score import ScoreSettings

__all__ = ["BuildSettings", "build_settings"]


@dataclass(frozen=True)
class BuildSettings:
    """Settings shared by all pieces of a run.

    Attributes
    ----------
    work_dir : str
        The build's work directory (a path every worker sees).
    normalize, render, score, align, perform
        Each stage's own settings.
    until : str
        Last stage to run (one of :data:`msmd_builder.stages.STAGE_NAMES`).
    force : bool
        Ignore cached results and redo every stage.
    """

    work_dir: str
    normalize: NormalizeSettings
    render: RenderSettings = field(default_factory=RenderSettings)
    score: ScoreSettings = field(default_factory=ScoreSettings)
    align: AlignSettings = field(default_factory=AlignSettings)
    perform: PerformSettings = field(default_factory=PerformSettings)
    until: str = "align"
    force: bool = False

    def __post_init__(self) -> None:
        if self.until not in STAGE_NAMES:
            raise ConfigError(
                f"unknown stage {self.until!r}; choose one of {', '.join(STAGE_NAMES)}"
            )

    def of(self, stage: str) -> object:
        """Return the settings of one stage."""
        return getattr(self, stage)

    def with_repeats(self, repeats: str) -> BuildSettings:
        """Return a copy that renders with ``repeats`` (one of ``REPEATS_MODES``)."""
        return replace(self, render=replace(self.render, repeats=repeats))


def build_settings(
    work_dir: str | os.PathLike[str],
    mutopia_root: str | os.PathLike[str],
    *,
    until: str = "align",
    force: bool = False,
    legacy_encoding: str | None = "cp1252",
    timeout_sec: float = DEFAULT_TIMEOUT_SEC,
    sandbox: str = "auto",
    cpu_sec: float = DEFAULT_CPU_SEC,
    memory_mb: int = DEFAULT_MEMORY_MB,
    repeats: str = "unfolded",
    page_width_px: int = 835,
    repeats_fallback: bool = True,
    seed: int = 0,
    recipe: PerformanceRecipe = MSMD_RECIPE,
    keep_audio: bool = False,
    verify_onsets: str = "reference",
    synth: SynthSettings | None = None,
) -> BuildSettings:
    """Return :class:`BuildSettings` from the flat options of the command line.

    The one place where options become per-stage settings; every argument has
    the stage's default.  Paths are made absolute, since workers may run
    elsewhere.  LilyPond and convert-ly share one :class:`SandboxSettings`.
    """
    confinement = SandboxSettings(mode=sandbox, cpu_sec=cpu_sec, memory_mb=memory_mb)
    return BuildSettings(
        work_dir=str(Path(work_dir).resolve()),
        normalize=NormalizeSettings(
            str(Path(mutopia_root).resolve()), legacy_encoding, sandbox=confinement
        ),
        render=RenderSettings(timeout_sec=timeout_sec, repeats=repeats, sandbox=confinement),
        score=ScoreSettings(page_width_px=page_width_px),
        align=AlignSettings(repeats_fallback=repeats_fallback),
        perform=PerformSettings(
            seed=seed,
            recipe=recipe,
            keep_audio=keep_audio,
            verify_onsets=verify_onsets,
            synth=synth if synth is not None else SynthSettings(),
        ),
        until=until,
        force=force,
    )
