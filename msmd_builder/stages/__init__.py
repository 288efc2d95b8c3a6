"""The stages, in data order.

Per piece, each a module with ``run(record_in, settings, piece_dir, *, force)``
returning its output record (:data:`STAGES`, looped over by
:func:`msmd_builder.pipeline.run.process_piece`)::

    corpus index entry
      -> normalize   copy the sources, convert-ly             -> NormalizedPiece
      -> render      LilyPond with our hooks: PDF, MIDI, tables -> RenderResult
      -> score       page images, noteheads, systems            -> ScoreResult
      -> align       performed notes linked to noteheads        -> AlignResult
      -> perform     FluidSynth performances, spectrograms      -> PerformStageResult

Before them, :mod:`.corpus` scans a Mutopia checkout into the index; after them,
over the built pieces of a dataset, :mod:`.splits` draws or imports splits and
:mod:`.shards` writes the HDF5 shards.

The registry imports nothing until a stage runs, so reading this list costs
nothing and consumers that import :mod:`msmd_builder.dataset` never load
LilyPond or FluidSynth bindings.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from msmd_builder.core.errors import ConfigError
from msmd_builder.core.workdir import PieceDir

__all__ = ["Stage", "STAGES", "STAGE_NAMES", "stages_until"]


@dataclass(frozen=True)
class Stage:
    """One per-piece stage: its name and the module that implements it.

    The module defines ``run(record_in, settings, piece_dir, *, force=False)``
    and may define ``preflight(settings)``, which checks the tools the stage
    needs and raises a tool or configuration error before any piece runs.
    """

    name: str
    module: str

    def _module(self) -> Any:
        return importlib.import_module(self.module)

    def run(self, record: Any, settings: Any, piece_dir: PieceDir, *, force: bool = False) -> Any:
        """Run the stage on one piece and return its output record."""
        return self._module().run(record, settings, piece_dir, force=force)

    def preflight(self, settings: Any) -> None:
        """Check the stage's tools and settings once, before the first piece."""
        check = getattr(self._module(), "preflight", None)
        if check is not None:
            check(settings)


#: The per-piece stages, in data order.
STAGES: tuple[Stage, ...] = (
    Stage("normalize", "msmd_builder.stages.normalize"),
    Stage("render", "msmd_builder.stages.render"),
    Stage("score", "msmd_builder.stages.score"),
    Stage("align", "msmd_builder.stages.align.stage"),
    Stage("perform", "msmd_builder.stages.perform.stage"),
)
#: Their names, in data order.
STAGE_NAMES: tuple[str, ...] = tuple(stage.name for stage in STAGES)


def stages_until(last: str) -> tuple[Stage, ...]:
    """Return the stages from the first up to and including ``last``."""
    if last not in STAGE_NAMES:
        raise ConfigError(f"unknown stage {last!r}; choose one of {', '.join(STAGE_NAMES)}")
    return STAGES[: STAGE_NAMES.index(last) + 1]
