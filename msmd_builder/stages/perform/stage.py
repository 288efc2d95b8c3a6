"""Stage ``perform``: every split role's performances of an aligned piece."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from msmd_builder.core.cache import (
    StageCache,
    output_sizes,
    sized_outputs,
)
from msmd_builder.core.errors import ConfigError, SynthesisError
from msmd_builder.core.units import SAMPLE_RATE, sec_to_frame
from msmd_builder.core.workdir import PieceDir
from msmd_builder.stages.align.stage import AlignResult
from msmd_builder.stages.perform.fluidsynth import (
    SoundfontCache,
    SynthSettings,
    _fluid,
    default_soundfont_cache,
    synthesize,
)
from msmd_builder.stages.perform.listing import RECORDINGS_KEY, carried_recordings
from msmd_builder.stages.perform.npz import (
    FORMAT_NAME,
    FORMAT_VERSION,
    performance_cache_key,
    read_header,
    write_flac,
    write_performance,
)
from msmd_builder.stages.perform.onsets import verify_onsets
from msmd_builder.stages.perform.plans import (
    _SPLIT_ROLES,
    MSMD_RECIPE,
    PerformancePlan,
    PerformanceRecipe,
    _check,
    plan_piece,
)
from msmd_builder.stages.perform.realize import _as_event_table, realize_on_grid
from msmd_builder.stages.perform.soundfonts import (
    SoundfontSpec,
    find_soundfont,
    load_soundfonts,
    locate,
)
from msmd_builder.stages.perform.spectrogram import compute_spectrogram

__all__ = [
    "PerformanceResult",
    "performance_cache_key",
    "perform_piece",
    "VERIFY_CHOICES",
    "RECORD_FORMAT",
    "STAGE_VERSION",
    "PerformSettings",
    "preflight",
    "checked_soundfont",
    "PerformStageResult",
    "run",
]


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
        Soundfont list; default :func:`msmd_builder.stages.perform.soundfonts.load_soundfonts`.
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
        sf_path = checked_soundfont(spec, cache)
        sf_sha = cache.sha256(sf_path)
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
        cached = StageCache(npz_path, FORMAT_NAME, FORMAT_VERSION, key)
        audio_files = [flac_path] if keep_audio else []
        if cached.lookup(lambda _, files=audio_files: files, reader=read_header):
            results.append(_result_from_file(npz_path, audio_path, key, plan.performance_id))
            continue

        performed, pedal = realize_on_grid(plan, table, sample_rate=sample_rate)
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
            write_flac(flac_path, audio, sample_rate)
        write_performance(npz_path, arrays)
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


#: Which performances get the (independent) onset check in a dataset build.
VERIFY_CHOICES = ("all", "reference", "none")
#: ``format_name`` of ``perform/perform.json``.
RECORD_FORMAT = "msmd-builder/perform-record"
#: Layout version of ``perform/perform.json`` (2: with the files' ``output_sizes``).
RECORD_VERSION = 2
STAGE_VERSION = 1


@dataclass(frozen=True)
class PerformSettings:
    """Settings of the perform stage.

    Attributes
    ----------
    seed : int
        The build's seed (plans and humanization are drawn from it).
    recipe : PerformanceRecipe
        What each split role's pieces get; default MSMD's.
    keep_audio : bool
        Also write every performance as FLAC.
    verify_onsets : {'all', 'reference', 'none'}
        Which performances get :func:`verify_onsets`: all, the first of each
        role (the reference rendering of train/valid and the test rendering),
        or none.
    roles : tuple of str or None
        The split roles whose performances this piece gets; None for every
        role.  A dataset build gives each piece the roles it has in the
        requested splits, so no piece is synthesized for a role no split
        puts it in.
    synth : SynthSettings
        FluidSynth's settings; the default is MSMD's (``docs/performances.md``
        measures what the others save and change).
    """

    seed: int = 0
    recipe: PerformanceRecipe = MSMD_RECIPE
    keep_audio: bool = False
    verify_onsets: str = "reference"
    roles: tuple[str, ...] | None = None
    synth: SynthSettings = field(default_factory=SynthSettings)

    def __post_init__(self) -> None:
        _check(
            isinstance(self.recipe, PerformanceRecipe),
            f"recipe must be a PerformanceRecipe (PerformanceRecipe.from_dict reads a mapping), "
            f"got {type(self.recipe).__name__}",
        )
        _check(
            self.verify_onsets in VERIFY_CHOICES,
            f"verify_onsets must be one of {', '.join(VERIFY_CHOICES)}, got {self.verify_onsets!r}",
        )
        _check(
            self.roles is None
            or (isinstance(self.roles, tuple) and set(self.roles) <= set(_SPLIT_ROLES)),
            f"roles must be None or a tuple of {', '.join(_SPLIT_ROLES)}, got {self.roles!r}",
        )


def preflight(settings: PerformSettings, soundfonts: Sequence[SoundfontSpec] | None = None) -> None:
    """Fail at once, with the fix, if synthesis cannot run for this recipe.

    Checks that libfluidsynth loads, that every soundfont the recipe plays is
    installed and unchanged (its SHA-256 is the one in ``soundfonts.txt``) and
    that the recipe plans (every role has soundfonts of the role it needs).

    Raises
    ------
    ToolNotFoundError
        libfluidsynth or a soundfont file is missing (the message has the
        ``apt-get`` line that installs it).
    ConfigError
        A soundfont file differs from the list, or the recipe cannot be planned.
    """
    _fluid()
    specs = list(soundfonts) if soundfonts is not None else load_soundfonts()
    plans, _ = plan_piece("preflight", soundfonts=specs, seed=settings.seed, recipe=settings.recipe)
    for name in dict.fromkeys(plan.soundfont for plan in plans):
        spec = find_soundfont(specs, name)
        checked_soundfont(spec, default_soundfont_cache())


def checked_soundfont(spec: SoundfontSpec, cache: SoundfontCache) -> Path:
    """Locate a soundfont's file and check its SHA-256 against the list."""
    path = locate(spec)
    sha = cache.sha256(path)
    if sha != spec.sha256:
        raise ConfigError(
            f"soundfont {spec.name!r}: {path} has SHA-256 {sha}, but soundfonts.txt expects "
            f"{spec.sha256}: the file changed since the list was made; reinstall it with "
            f"`apt-get install --reinstall {spec.package}` (or remove the copy from "
            "$MSMD_SOUNDFONT_PATH), then run `msmd-build soundfonts check`"
        )
    return path


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

    def report_details(self) -> dict[str, Any]:
        """Return what the build report shows of this stage."""
        return {
            "performances": self.summary(),
            "perform_seconds": {k: round(v, 4) for k, v in self.seconds.items()},
        }


def run(
    aligned: AlignResult,
    settings: PerformSettings,
    piece_dir: PieceDir,
    *,
    force: bool = False,
    soundfonts: Sequence[SoundfontSpec] | None = None,
) -> PerformStageResult:
    """Render every role's performances of an aligned piece and index them.

    Writes ``perform/<performance_id>.npz`` (see :func:`perform_piece`, which
    reuses performances already up to date) and ``perform.json``: piece id,
    seed, recipe, ``roles`` (role -> performance ids) and one entry per
    performance (file, audio file or null, plan, cache key, duration, frames,
    onset-check fraction).  Files of performances no longer planned are
    removed, so a changed plan leaves no stale audio behind.  When every
    performance's key and file are unchanged, nothing is opened.

    Parameters
    ----------
    aligned : AlignResult
        The align stage's record (its performed events, score seconds).
    settings : PerformSettings
        Seed, recipe, audio and onset-check choices.
    piece_dir : PieceDir
        The piece's work folder.
    force : bool
        Re-synthesize every performance.
    soundfonts : sequence of SoundfontSpec, optional
        Default :func:`load_soundfonts`.
    """
    piece_id = aligned.piece_id
    specs = list(soundfonts) if soundfonts is not None else load_soundfonts()
    recipe = settings.recipe
    every_plan, every_role = plan_piece(
        piece_id, soundfonts=specs, seed=settings.seed, recipe=recipe
    )
    if settings.verify_onsets == "all":
        to_verify: bool | set[str] = True
    elif settings.verify_onsets == "none":
        to_verify = False
    else:
        # The first of each role, of every role: a performance's cache key does
        # not depend on which roles a build asks for.
        to_verify = {ids[0] for ids in every_role.values() if ids}
    plans, roles = _of_roles(every_plan, every_role, settings.roles)
    if isinstance(to_verify, set):
        to_verify &= {plan.performance_id for plan in plans}
    out = piece_dir.perform
    document: dict[str, Any] = {
        "stage": "perform",
        "stage_version": STAGE_VERSION,
        "align": aligned.cache_key,
        "seed": settings.seed,
        "recipe": recipe.to_dict(),
        "keep_audio": settings.keep_audio,
        "verify": sorted(to_verify) if isinstance(to_verify, set) else to_verify,
        "soundfonts": [spec.to_dict() for spec in specs],
    }
    if settings.roles is not None:  # every role: the key of earlier builds
        document["roles"] = sorted(settings.roles)
    if settings.synth != SynthSettings():  # MSMD's: the key of earlier builds
        document["synth"] = settings.synth.to_dict()
    cache = StageCache.for_document(
        piece_dir.perform_record,
        document,
        format_name=RECORD_FORMAT,
        format_version=RECORD_VERSION,
    )
    hit = cache.lookup(lambda record: sized_outputs(out, record["output_sizes"]), force=force)
    if hit is not None:
        return _stage_result(piece_id, out, hit)

    events = aligned.load()
    recordings = carried_recordings(piece_dir.perform_record, aligned.cache_key)
    results = perform_piece(
        plans,
        events,
        out_dir=out,
        keep_audio=settings.keep_audio,
        soundfonts=specs,
        settings=settings.synth,
        verify=to_verify,
    )
    # Performances of roles not asked for this time stay: a later build that
    # asks for them finds them up to date.
    keep = {f"{p.performance_id}{ext}" for p in every_plan for ext in (".npz", ".flac")}
    keep |= {name for entry in recordings for name in (entry["file"], entry["audio"]) if name}
    for stale in [*out.glob("*.npz"), *out.glob("*.flac")]:
        if stale.name not in keep:
            stale.unlink()
    if not settings.keep_audio:
        for plan in plans:
            (out / f"{plan.performance_id}.flac").unlink(missing_ok=True)
    stage = PerformStageResult(piece_id, out, roles, results, plans)
    files = [p.name for r in results for p in (r.path, r.audio_path) if p is not None]
    cache.store(
        {
            "piece_id": piece_id,
            "seed": settings.seed,
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
            RECORDINGS_KEY: recordings,
            "output_sizes": output_sizes(out, files),
        }
    )
    return stage


def _of_roles(
    plans: Sequence[PerformancePlan],
    roles: Mapping[str, list[str]],
    wanted: Collection[str] | None,
) -> tuple[list[PerformancePlan], dict[str, list[str]]]:
    """Keep the plans and roles of the ``wanted`` roles (all of them for None), in plan order."""
    if wanted is None:
        return list(plans), dict(roles)
    kept = {role: list(ids) for role, ids in roles.items() if role in wanted}
    ids = {performance_id for group in kept.values() for performance_id in group}
    return [plan for plan in plans if plan.performance_id in ids], kept


def _stage_result(piece_id: str, out: Path, record: Mapping[str, Any]) -> PerformStageResult:
    """Rebuild the stage's result from its record (nothing synthesized, nothing opened)."""
    results, plans = [], []
    for entry in record["performances"]:
        plans.append(PerformancePlan.from_dict(entry["plan"]))
        results.append(
            PerformanceResult(
                performance_id=entry["performance_id"],
                path=out / entry["file"],
                audio_path=out / entry["audio"] if entry["audio"] else None,
                skipped=True,
                cache_key=entry["cache_key"],
                n_frames=int(entry["n_frames"]),
                duration_sec=float(entry["duration_sec"]),
                onset_fraction=entry["onset_fraction"],
            )
        )
    roles = {role: list(ids) for role, ids in record["roles"].items()}
    return PerformStageResult(piece_id, out, roles, results, plans)
