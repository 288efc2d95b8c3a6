"""Performance plans: which performances a piece gets, from a recipe and a seed.

:func:`plan_performances` decides, deterministically from a global seed and the
piece id, the tempo ratio, soundfont, velocity, humanization and seed of every
performance of one split role, following a :class:`PerformanceRecipe` (MSMD's by
default); :func:`plan_piece` takes the union over the roles.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from msmd_builder.core.errors import ConfigError
from msmd_builder.stages.perform.humanize import HumanizeSettings
from msmd_builder.stages.perform.soundfonts import (
    SoundfontRole,
    SoundfontSpec,
    soundfonts_with_role,
)

__all__ = [
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
    "plan_piece",
    "choose_recipe",
]


#: Tempo ratios of MSMD's augmentation (``msmd_manager_app.py``: 0.9 to 1.1 in 0.05 steps).
MSMD_TEMPO_RATIOS: tuple[float, ...] = (0.9, 0.95, 1.0, 1.05, 1.1)


#: Tempo ratios of the tempo-robustness evaluation.
TEMPO_ROBUSTNESS_RATIOS: tuple[float, ...] = (0.5, 0.66, 1.0, 1.33, 2.0)


SplitRole = Literal["train", "valid", "test"]


_SPLIT_ROLES: tuple[str, ...] = ("train", "valid", "test")


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


def _ratio_milli(ratio: float) -> int:
    return int(round(1000 * ratio))


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


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
    reference_soundfont : str or None
        Soundfont of the reference performance instead of the first of the
        role's soundfonts (e.g. ``fluidr3-electric-piano``, MSMD's reference
        and the 2018 paper's no-augmentation rendering); None keeps the first.
    """

    soundfont_role: SoundfontRole = "train"
    tempo_ratios: tuple[float, ...] = MSMD_TEMPO_RATIOS
    n_performances: int | None = 7
    include_reference: bool = True
    velocity: int | None = 64
    humanize: HumanizeSettings | None = None
    reference_soundfont: str | None = None

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
        """Return the recipe as a JSON/YAML-friendly dict.

        ``reference_soundfont`` appears only when set, so that the recipes of
        builds that do not use it (and their cache keys) stay as they were.
        """
        out: dict[str, Any] = {
            "soundfont_role": self.soundfont_role,
            "tempo_ratios": list(self.tempo_ratios),
            "n_performances": self.n_performances,
            "include_reference": self.include_reference,
            "velocity": self.velocity,
            "humanize": self.humanize.to_dict() if self.humanize is not None else None,
        }
        if self.reference_soundfont is not None:
            out["reference_soundfont"] = self.reference_soundfont
        return out

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
        Name of a :class:`~msmd_builder.stages.perform.soundfonts.SoundfontSpec`.
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
    recipe: PerformanceRecipe = MSMD_RECIPE,
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
        The soundfont list (:func:`msmd_builder.stages.perform.soundfonts.load_soundfonts`);
        its order decides the reference soundfont of each role (the first).
    seed : int
        Global seed of the build.
    recipe : PerformanceRecipe, optional
        What to plan (:meth:`PerformanceRecipe.from_dict` reads a YAML or JSON
        document, :func:`choose_recipe` a build's options).  Default:
        :data:`MSMD_RECIPE`.

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
        if split.reference_soundfont is not None:
            _check(
                split.reference_soundfont in [sf.name for sf in fonts],
                f"reference soundfont {split.reference_soundfont!r} is not a "
                f"{split.soundfont_role!r} soundfont of {[sf.name for sf in fonts]}",
            )
            reference = (1.0, split.reference_soundfont)
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


def plan_piece(
    piece_id: str,
    *,
    soundfonts: Sequence[SoundfontSpec],
    seed: int,
    recipe: PerformanceRecipe = MSMD_RECIPE,
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


def choose_recipe(
    *,
    recipe_file: str | os.PathLike[str] | None = None,
    humanize: bool = False,
    tempo_robustness: bool = False,
    reference_soundfont: str | None = None,
) -> PerformanceRecipe:
    """Return the performance recipe a build asks for: a YAML file, or a named one, or MSMD's.

    Parameters
    ----------
    recipe_file : path-like, optional
        A YAML recipe (:meth:`PerformanceRecipe.from_dict` layout).
    humanize : bool
        :data:`HUMANIZED_RECIPE`.
    tempo_robustness : bool
        :data:`TEMPO_ROBUSTNESS_RECIPE`.
    reference_soundfont : str, optional
        Render the reference performance of train and valid pieces with this
        soundfont (applied on top of the recipe chosen by the other options).

    Raises
    ------
    ConfigError
        If more than one is asked for, or the file is not a valid recipe.
    """
    chosen = [recipe_file is not None, humanize, tempo_robustness]
    _check(
        sum(chosen) <= 1,
        "a recipe file, --humanize and --tempo-robustness are separate recipes; pick one",
    )
    recipe = MSMD_RECIPE
    if recipe_file is not None:
        import yaml

        try:
            document = yaml.safe_load(Path(recipe_file).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read the performance recipe {recipe_file}: {exc}") from exc
        _check(isinstance(document, Mapping), f"{recipe_file}: a recipe is a YAML mapping")
        recipe = PerformanceRecipe.from_dict(document)
    elif humanize:
        recipe = HUMANIZED_RECIPE
    elif tempo_robustness:
        recipe = TEMPO_ROBUSTNESS_RECIPE
    if reference_soundfont is not None:
        recipe = PerformanceRecipe(
            name=f"{recipe.name}, {reference_soundfont} reference",
            train=replace(recipe.train, reference_soundfont=reference_soundfont),
            valid=replace(recipe.valid, reference_soundfont=reference_soundfont),
            test=recipe.test,
        )
    return recipe
