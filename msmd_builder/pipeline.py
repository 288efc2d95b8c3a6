"""The orchestrator: run the per-piece stages over many pieces, in parallel.

Each piece goes through the stages in order; a stage that fails raises a
:class:`~msmd_builder.errors.PieceError`, which ends that piece only.  Every
stage caches its result under a content key, so running the same build twice
does nothing the second time, and a killed build resumes.

Work is spread over local worker processes (``workers``); each worker handles
whole pieces, so one LilyPond crash or hang costs one piece and its time
limit, nothing else.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from msmd_builder.align import align_piece
from msmd_builder.cache import atomic_write_json, atomic_write_text, read_json
from msmd_builder.corpus import PieceEntry, read_index
from msmd_builder.errors import ConfigError, NotUnrollableError, PieceError, ReadingOrderError
from msmd_builder.normalize import normalize_piece
from msmd_builder.perform import MSMD_RECIPE, VERIFY_CHOICES, perform_stage
from msmd_builder.render import DEFAULT_TIMEOUT_SEC, REPEATS_MODES, render_piece
from msmd_builder.score import build_score
from msmd_builder.tools import lilypond_version

#: The per-piece stages, in order.
STAGES = ("normalize", "render", "score", "align", "perform")

__all__ = [
    "STAGES",
    "BuildSettings",
    "PieceOutcome",
    "WorkDir",
    "process_piece",
    "run_pieces",
    "write_report",
]


@dataclass(frozen=True)
class WorkDir:
    """Paths of a build's work directory."""

    root: Path

    @property
    def index(self) -> Path:
        """The corpus index written by ``msmd-build corpus scan``."""
        return self.root / "index.csv"

    @property
    def corpus_record(self) -> Path:
        """JSON with the Mutopia root the index was made from."""
        return self.root / "corpus.json"

    @property
    def reports(self) -> Path:
        """Folder of build reports."""
        return self.root / "reports"

    def mutopia_root(self) -> Path:
        """Return the Mutopia root recorded by the scan."""
        if not self.corpus_record.exists():
            raise ConfigError(
                f"{self.corpus_record} not found: run `msmd-build corpus scan ROOT "
                f"--work-dir {self.root}` first"
            )
        return Path(read_json(self.corpus_record)["mutopia_root"])

    def entries(self) -> list[PieceEntry]:
        """Return the index's pieces."""
        if not self.index.exists():
            raise ConfigError(
                f"{self.index} not found: run `msmd-build corpus scan ROOT --work-dir {self.root}`"
            )
        return read_index(self.index)


@dataclass(frozen=True)
class BuildSettings:
    """Settings shared by all pieces of a run."""

    work_dir: str
    mutopia_root: str
    render_timeout_sec: float = DEFAULT_TIMEOUT_SEC
    legacy_encoding: str | None = "cp1252"
    force: bool = False
    until: str = "align"
    page_width_px: int = 835
    seed: int = 0
    recipe: dict[str, Any] | None = None
    keep_audio: bool = False
    verify_onsets: str = "reference"
    repeats: str = "unfolded"
    repeats_fallback: bool = True

    def __post_init__(self) -> None:
        if self.repeats not in REPEATS_MODES:
            raise ConfigError(
                f"repeats must be one of {', '.join(REPEATS_MODES)}, got {self.repeats!r}"
            )
        if self.until not in STAGES:
            raise ConfigError(f"unknown stage {self.until!r}; choose one of {', '.join(STAGES)}")
        if self.verify_onsets not in VERIFY_CHOICES:
            raise ConfigError(
                f"verify_onsets must be one of {', '.join(VERIFY_CHOICES)}, "
                f"got {self.verify_onsets!r}"
            )


@dataclass(frozen=True)
class PieceOutcome:
    """How one piece went through the stages.

    Attributes
    ----------
    piece_id : str
        The piece.
    status : str
        ``"ok"``, ``"degraded"`` (LilyPond reported errors but produced output)
        or ``"failed"``.
    stage : str
        The last stage reached (the failing one for a failure).
    error_class, message : str
        The failure's class and message (empty on success).
    seconds : dict
        Wall-clock seconds per stage.
    details : dict
        Stage facts worth reporting (files, warnings, LilyPond error count).
    """

    piece_id: str
    status: str
    stage: str
    error_class: str = ""
    message: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    details: dict[str, object] = field(default_factory=dict)


def process_piece(entry: PieceEntry, settings: BuildSettings) -> PieceOutcome:
    """Run the stages of one piece up to ``settings.until``; a piece's failure is returned."""
    seconds: dict[str, float] = {}
    details: dict[str, object] = {}
    stage = "normalize"
    started = time.perf_counter()
    last = STAGES.index(settings.until)

    def finished(name: str) -> bool:
        """Record the stage's time; True when it is the last one asked for."""
        seconds[name] = time.perf_counter() - started
        return STAGES.index(name) >= last

    def outcome(status: str) -> PieceOutcome:
        details["worker_max_rss_mb"] = _max_rss_mb()
        return PieceOutcome(entry.piece_id, status, stage, seconds=seconds, details=details)

    details.update(composer=entry.composer_dir, title=entry.title)
    try:
        normalized = normalize_piece(
            entry.piece_id,
            mutopia_root=settings.mutopia_root,
            main_file=entry.main_file,
            includes=entry.includes,
            work_dir=settings.work_dir,
            legacy_encoding=settings.legacy_encoding,
            force=settings.force,
        )
        details["normalize_warnings"] = list(normalized.warnings)
        if finished(stage):
            return outcome("ok")

        memo = _RepeatsMemo(Path(settings.work_dir) / "pieces" / entry.piece_id, normalized)
        repeats = memo.mode(settings)
        if repeats != settings.repeats:
            details.update(memo.reason())
        while True:
            try:
                stage, started = "render", time.perf_counter()
                rendered = render_piece(
                    normalized,
                    work_dir=settings.work_dir,
                    timeout_sec=settings.render_timeout_sec,
                    repeats=repeats,
                    force=settings.force,
                )
                details.update(
                    lilypond_seconds=rendered.seconds,
                    pdf_files=list(rendered.pdf_files),
                    midi_files=list(rendered.midi_files),
                    lilypond_errors=rendered.n_errors,
                    messages=list(rendered.messages[:5]),
                    repeats=repeats,
                )
                if rendered.error:
                    details["degraded_class"] = rendered.error["error_class"]
                if finished(stage):
                    return outcome(rendered.status)

                stage, started = "score", time.perf_counter()
                score = build_score(
                    rendered,
                    work_dir=settings.work_dir,
                    width_px=settings.page_width_px,
                    force=settings.force,
                )
                details["link_agreement"] = score.link_agreement
                if finished(stage):
                    return outcome(rendered.status)

                stage, started = "align", time.perf_counter()
                aligned = align_piece(
                    rendered,
                    score,
                    work_dir=settings.work_dir,
                    repeats=repeats,
                    force=settings.force,
                )
                details["alignment"] = aligned.stats
                if finished(stage):
                    return outcome(rendered.status)
                break
            except (ReadingOrderError, NotUnrollableError) as exc:
                if repeats == "folded" or not settings.repeats_fallback:
                    raise
                # The unfolded MIDI is out of step with the print (a repeat written in
                # some voices only), or a written jump does not read into one playing
                # order: perform the printed order instead, as MSMD did.
                memo.record(exc.message, exc.error_class)
                repeats = "folded"
                details.update(memo.reason())
                seconds.pop("render", None)
                seconds.pop("score", None)

        stage, started = "perform", time.perf_counter()
        performed = perform_stage(
            entry.piece_id,
            aligned.load(),
            work_dir=settings.work_dir,
            seed=settings.seed,
            recipe=settings.recipe if settings.recipe is not None else MSMD_RECIPE,
            keep_audio=settings.keep_audio,
            verify=settings.verify_onsets,
        )
        details["performances"] = performed.summary()
        details["perform_seconds"] = {k: round(v, 4) for k, v in performed.seconds.items()}
        finished(stage)
        return outcome(rendered.status)
    except PieceError as exc:
        seconds.setdefault(stage, time.perf_counter() - started)
        details["detail"] = exc.detail[-2000:]
        return PieceOutcome(
            entry.piece_id,
            "failed",
            stage,
            error_class=exc.error_class,
            message=exc.message,
            seconds=seconds,
            details=details,
        )
    except Exception as exc:  # noqa: BLE001 - an unexpected bug must not stop the build
        seconds.setdefault(stage, time.perf_counter() - started)
        return PieceOutcome(
            entry.piece_id,
            "failed",
            stage,
            error_class="internal",
            message=f"{type(exc).__name__}: {exc}",
            seconds=seconds,
            details={"traceback": traceback.format_exc()[-4000:]},
        )


class _RepeatsMemo:
    """Remembers that a piece's unfolded performance could not be built.

    Either it failed the reading-order check or its written jump does not read
    into one playing order.  With ``repeats_fallback`` such a piece is built in
    printed order instead.
    The memo (``pieces/<id>/repeats.json``) is keyed by the normalized sources
    and the versions of the hooks and stages that decided, so a rebuild goes
    straight to the folded rendering, and a changed source or a new version of
    the hooks tries the unfolded one again.
    """

    def __init__(self, piece_dir: Path, normalized: Any) -> None:
        from msmd_builder import align, render
        from msmd_builder.cache import sha256_file, stable_key
        from msmd_builder.tools import patches_dir

        self.path = piece_dir / "repeats.json"
        self.key = stable_key(
            {
                "normalized": normalized.cache_key,
                "render": render._STAGE_VERSION,
                "align": align._STAGE_VERSION,
                "patches": {p.name: sha256_file(p) for p in sorted(patches_dir().glob("*.ily"))},
            }
        )

    def mode(self, settings: BuildSettings) -> str:
        """Return the repeats mode to build with."""
        if settings.repeats == "unfolded" and settings.repeats_fallback and self.path.exists():
            memo = read_json(self.path)
            if memo.get("key") == self.key:
                return "folded"
        return settings.repeats

    def reason(self) -> dict[str, str]:
        """Why the piece is built folded: ``repeats_fallback`` (message) and its class."""
        memo = read_json(self.path)
        return {
            "repeats_fallback": str(memo.get("reason", ""))[:500],
            "repeats_fallback_class": str(memo.get("error_class", "verification")),
        }

    def record(self, reason: str, error_class: str) -> None:
        atomic_write_json(
            self.path,
            {
                "key": self.key,
                "requested": "unfolded",
                "used": "folded",
                "reason": reason,
                "error_class": error_class,
            },
        )


def _max_rss_mb() -> float:
    """Peak resident memory of this worker process and of its finished children, MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)  # Linux reports KiB


def run_pieces(
    entries: Sequence[PieceEntry],
    settings: BuildSettings,
    *,
    workers: int = 1,
    dask_scheduler: str | None = None,
    on_done: Callable[[PieceOutcome], None] | None = None,
) -> list[PieceOutcome]:
    """Process pieces in parallel; results in input order.

    Parameters
    ----------
    entries : sequence of PieceEntry
        The pieces.
    settings : BuildSettings
        Shared settings.  With a Dask cluster, ``work_dir`` and
        ``mutopia_root`` must be paths every worker sees (a shared filesystem).
    workers : int
        Number of local worker processes; 1 runs in this process.  Ignored
        with ``dask_scheduler``.
    dask_scheduler : str, optional
        Address of a Dask distributed scheduler (``tcp://host:8786``); each
        piece becomes one task on its workers.
    on_done : callable, optional
        Called with each outcome as it completes (for progress display).
    """
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    lilypond_version()  # fail early, once, if LilyPond is missing
    outcomes: dict[str, PieceOutcome] = {}

    def record(outcome: PieceOutcome) -> None:
        outcomes[outcome.piece_id] = outcome
        if on_done:
            on_done(outcome)

    if dask_scheduler is not None:
        _run_on_dask(entries, settings, dask_scheduler, record)
    elif workers == 1:
        for entry in entries:
            record(process_piece(entry, settings))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            pending: set[Future[PieceOutcome]] = set()
            queue = iter(entries)
            # Keep a bounded number of tasks in flight so progress stays live.
            for entry in _take(queue, workers * 2):
                pending.add(pool.submit(process_piece, entry, settings))
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    record(future.result())
                for entry in _take(queue, len(done)):
                    pending.add(pool.submit(process_piece, entry, settings))
    return [outcomes[entry.piece_id] for entry in entries]


def _run_on_dask(
    entries: Sequence[PieceEntry],
    settings: BuildSettings,
    address: str,
    record: Callable[[PieceOutcome], None],
) -> None:
    """Run :func:`process_piece` for every entry as tasks of a Dask cluster.

    Tasks are impure (``pure=False``): a rerun must look at the files again,
    not reuse a result the scheduler remembers.  A worker lost mid-task makes
    Dask retry the piece elsewhere; stages are idempotent, so that is safe.
    """
    try:
        from distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover - distributed is a dependency
        raise ConfigError("--dask-scheduler needs the `distributed` package") from exc
    run = uuid.uuid4().hex[:8]  # two builds on one cluster must not share task keys
    with Client(address, timeout="30s") as client:
        futures = [
            client.submit(
                process_piece, entry, settings, pure=False, key=f"piece-{entry.piece_id}-{run}"
            )
            for entry in entries
        ]
        by_key = {f.key: entry for f, entry in zip(futures, entries, strict=True)}
        for future in as_completed(futures):
            try:
                outcome = future.result()
            except Exception as exc:  # noqa: BLE001 - a lost task must not stop the build
                entry = by_key[future.key]
                outcome = PieceOutcome(
                    entry.piece_id,
                    "failed",
                    "dask",
                    error_class="internal",
                    message=f"task failed on the cluster: {type(exc).__name__}: {exc}",
                )
            record(outcome)
            future.release()


def _take(iterator: Iterable[PieceEntry], n: int) -> list[PieceEntry]:
    taken = []
    for item in iterator:
        taken.append(item)
        if len(taken) == n:
            break
    return taken


def write_report(
    outcomes: Sequence[PieceOutcome],
    *,
    out_dir: str | Path,
    name: str,
    wall_seconds: float,
    workers: int,
    extra_summary: dict[str, Any] | None = None,
    title: str | None = None,
) -> tuple[Path, Path]:
    """Write a build report as JSON (all facts) and Markdown (for people).

    ``extra_summary`` adds facts of later, whole-dataset steps (splits,
    shards, their Table-1 statistics) to the summary.

    Returns
    -------
    json_path, markdown_path : Path
    """
    out = Path(out_dir)
    counts = Counter(o.status for o in outcomes)
    failures = Counter(o.error_class for o in outcomes if o.status == "failed")
    stage_seconds: dict[str, list[float]] = {}
    for outcome in outcomes:
        for stage, sec in outcome.seconds.items():
            stage_seconds.setdefault(stage, []).append(sec)
    lilypond_seconds = [
        float(o.details["lilypond_seconds"]) for o in outcomes if "lilypond_seconds" in o.details
    ]
    summary = {
        "pieces": len(outcomes),
        "status_counts": dict(counts),
        "failure_classes": dict(failures),
        "wall_seconds": round(wall_seconds, 2),
        "workers": workers,
        "stage_seconds_total": {k: round(sum(v), 2) for k, v in stage_seconds.items()},
        "stage_seconds_median": {
            k: round(statistics.median(v), 3) for k, v in stage_seconds.items()
        },
        "lilypond_seconds_median": round(statistics.median(lilypond_seconds), 3)
        if lilypond_seconds
        else None,
        "lilypond_seconds_total": round(sum(lilypond_seconds), 2),
        "lilypond_version": lilypond_version(),
        "cpu_count": os.cpu_count(),
        "alignment_totals": _alignment_totals(outcomes),
        "performance_totals": _performance_totals(outcomes),
        "printed_order_fallbacks": dict(
            Counter(
                o.details["repeats_fallback_class"]
                for o in outcomes
                if o.status != "failed" and "repeats_fallback_class" in o.details
            )
        ),
    }
    if extra_summary:
        summary.update(extra_summary)
    document = {"summary": summary, "pieces": [asdict(o) for o in outcomes]}
    json_path = out / f"{name}.json"
    md_path = out / f"{name}.md"
    atomic_write_json(json_path, document)
    atomic_write_text(md_path, _markdown(summary, outcomes, title or f"Build report: {name}"))
    return json_path, md_path


def _alignment_totals(outcomes: Sequence[PieceOutcome]) -> dict[str, int]:
    """Sum the alignment counts of the pieces that reached the align stage."""
    totals: Counter[str] = Counter()
    for outcome in outcomes:
        stats = outcome.details.get("alignment")
        if outcome.status != "failed" and isinstance(stats, dict):
            totals["pieces"] += 1
            totals.update({k: v for k, v in stats.items() if isinstance(v, int)})
    return dict(totals)


def _performance_totals(outcomes: Sequence[PieceOutcome]) -> dict[str, Any]:
    """Sum the performances of the pieces that reached the perform stage."""
    rows = [
        row
        for o in outcomes
        if o.status != "failed"
        for row in o.details.get("performances", [])  # type: ignore[union-attr]
    ]
    if not rows:
        return {}
    seconds: Counter[str] = Counter()
    for o in outcomes:
        seconds.update(o.details.get("perform_seconds", {}))  # type: ignore[arg-type]
    checked = [r["onset_fraction"] for r in rows if r.get("onset_fraction") is not None]
    by_font: Counter[str] = Counter()
    synth_cost: dict[str, list[float]] = {}
    for r in rows:
        by_font[r["soundfont"]] += r["duration_sec"]
        timing = r.get("seconds") or {}
        if "synthesis" in timing and r["duration_sec"] > 0:
            minutes = r["duration_sec"] / 60
            synth_cost.setdefault(r["soundfont"], []).append(timing["synthesis"] / minutes)
            synth_cost.setdefault("(spectrogram)", []).append(timing["spectrogram"] / minutes)
    return {
        "pieces": sum(
            1 for o in outcomes if o.status != "failed" and o.details.get("performances")
        ),
        "performances": len(rows),
        "audio_hours": round(sum(r["duration_sec"] for r in rows) / 3600, 3),
        "audio_hours_per_soundfont": {k: round(v / 3600, 3) for k, v in sorted(by_font.items())},
        # Performances synthesized in this run only (cached ones carry no timing).
        "synthesis_sec_per_audio_min_median": {
            k: round(statistics.median(v), 3) for k, v in sorted(synth_cost.items())
        },
        "seconds": {k: round(v, 2) for k, v in sorted(seconds.items())},
        "onset_checks": len(checked),
        "onset_fraction_min": min(checked) if checked else None,
        "onset_fraction_median": statistics.median(checked) if checked else None,
        "onset_checks_below_98": sum(1 for f in checked if f < 0.98),
    }


def _markdown(summary: dict, outcomes: Sequence[PieceOutcome], title: str) -> str:
    n = summary["pieces"] or 1
    produced = summary["status_counts"].get("ok", 0) + summary["status_counts"].get("degraded", 0)
    rendered = sum(
        1 for o in outcomes if o.details.get("pdf_files") and o.details.get("midi_files")
    )
    lines = [
        f"# {title}",
        "",
        f"- pieces: {summary['pieces']}",
        f"- produced PDF and MIDI: {rendered} ({100 * rendered / n:.1f} %)",
        f"- through every stage: {produced} ({100 * produced / n:.1f} %), of which "
        f"{summary['status_counts'].get('degraded', 0)} with LilyPond errors in the log",
        f"- failed: {summary['status_counts'].get('failed', 0)}",
        f"- wall time: {summary['wall_seconds']} s with {summary['workers']} worker(s)",
        f"- LilyPond {summary['lilypond_version']}: median {summary['lilypond_seconds_median']} s, "
        f"total {summary['lilypond_seconds_total']} s",
        "",
        "## Seconds per stage",
        "",
        "| stage | total | median |",
        "| --- | ---: | ---: |",
    ]
    for stage, total in summary["stage_seconds_total"].items():
        lines.append(f"| {stage} | {total} | {summary['stage_seconds_median'][stage]} |")
    totals = summary.get("alignment_totals") or {}
    if totals:
        sounding = totals.get("sounding_visible_noteheads", 0) or 1
        midi = totals.get("midi_notes", 0) or 1
        lines += [
            "",
            "## Aligned data",
            "",
            "| pieces | pages | systems | noteheads | performed notes | aligned pairs |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |",
            f"| {totals.get('pieces', 0)} | {totals.get('pages', 0)} | {totals.get('systems', 0)} "
            f"| {totals.get('noteheads', 0)} | {totals.get('performed_notes', 0)} "
            f"| {totals.get('aligned_performed_notes', 0)} |",
            "",
            f"- sounding visible noteheads aligned: "
            f"{100 * totals.get('aligned_sounding_visible_noteheads', 0) / sounding:.2f} %",
            f"- MIDI notes accounted for: {100 * totals.get('matched_midi_notes', 0) / midi:.2f} %",
            f"- pitch mismatches: {totals.get('pitch_mismatches', 0)}",
        ]
    perf = summary.get("performance_totals") or {}
    if perf:
        lines += [
            "",
            "## Performances",
            "",
            f"- {perf['performances']} performances of {perf['pieces']} pieces, "
            f"{perf['audio_hours']} hours of audio",
            "- seconds: " + ", ".join(f"{k} {v}" for k, v in perf["seconds"].items()),
            f"- onset checks: {perf['onset_checks']}, median fraction within one frame "
            f"{perf['onset_fraction_median']}, minimum {perf['onset_fraction_min']}, "
            f"{perf['onset_checks_below_98']} below 0.98",
        ]
    msmd = summary.get("msmd_table1") or {}
    columns = ("pieces", "pages", "noteheads", "events", "aligned_pairs")
    for split, parts in (summary.get("table1") or {}).items():
        reference = msmd.get(split, {})
        lines += [
            "",
            f"## Split {split}" + (" (MSMD's Table 1 in parentheses)" if reference else ""),
            "",
            "| part | pieces | pages | noteheads | events | aligned pairs |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for part, row in parts.items():
            ref = reference.get(part, {})
            cells = [f"{row.get(c, 0):,}" + (f" ({ref[c]:,})" if c in ref else "") for c in columns]
            lines.append(f"| {part} | " + " | ".join(cells) + " |")
    lines += ["", "## Failure classes", "", "| class | pieces |", "| --- | ---: |"]
    for cls, count in sorted(summary["failure_classes"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {cls} | {count} |")
    folded = [o for o in outcomes if o.status != "failed" and "repeats_fallback" in o.details]
    if folded:
        lines += [
            "",
            "## Built in printed order",
            "",
            "Their unfolded performance could not be built (reading-order failure, or a",
            "jump that does not read into one playing order); they are performed as printed.",
            "",
            "| piece | class | reason |",
            "| --- | --- | --- |",
        ]
        for o in folded:
            message = str(o.details["repeats_fallback"]).replace("|", "\\|").replace("\n", " ")
            cls = o.details.get("repeats_fallback_class", "")
            lines.append(f"| {o.piece_id} | {cls} | {message[:200]} |")
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        lines += ["", "## Failed pieces", "", "| piece | stage | class | message |"]
        lines.append("| --- | --- | --- | --- |")
        for o in failed:
            message = o.message.replace("|", "\\|").replace("\n", " ")[:200]
            lines.append(f"| {o.piece_id} | {o.stage} | {o.error_class} | {message} |")
    return "\n".join(lines) + "\n"


def load_report(path: str | Path) -> dict:
    """Read a JSON report written by :func:`write_report`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------------
# The whole dataset: pieces, then splits, then shards, then the report
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetOptions:
    """What a dataset build writes besides the per-piece outputs.

    Attributes
    ----------
    out_dir : str
        Folder of the shards (``<out_dir>/<split>/<part>-NNNNN.h5``), the
        split files (``<out_dir>/splits/<split>.yaml``) and the report.
    recipes : tuple of str
        Split recipes to draw from the built pieces (``all``, ``bach-only``,
        ``bach-out``); a recipe with no pieces to draw from is skipped and
        reported.
    leave_out : tuple of str
        Composers (directory names such as ``MozartWA``) for extra
        leave-one-composer-out splits.
    split_files : tuple of str
        Existing piece lists to import (MSMD's YAML layout).
    max_shard_bytes : int
        Upper bound of one shard file.
    """

    out_dir: str
    recipes: tuple[str, ...] = ("all", "bach-only", "bach-out")
    leave_out: tuple[str, ...] = ()
    split_files: tuple[str, ...] = ()
    max_shard_bytes: int = 1 << 30


@dataclass(frozen=True)
class DatasetResult:
    """What :func:`build_dataset` did."""

    outcomes: list[PieceOutcome]
    splits: dict[str, Any]
    imports: dict[str, Any]
    manifests: dict[str, Any]
    skipped_splits: dict[str, str]
    report_json: Path
    report_markdown: Path
    wall_seconds: float


def build_dataset(
    entries: Sequence[PieceEntry],
    settings: BuildSettings,
    options: DatasetOptions,
    *,
    workers: int = 1,
    dask_scheduler: str | None = None,
    on_done: Callable[[PieceOutcome], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> DatasetResult:
    """Build the dataset: every piece through every stage, then splits, shards and report.

    Each step is cached (per-piece stages by content keys, shards by a key
    of their inputs), so a rerun with nothing changed only checks, and a
    killed build resumes.  Splits are drawn from the pieces that built, with
    the build's seed, so two builds of the same corpus and seed agree.

    Parameters
    ----------
    entries : sequence of PieceEntry
        The pieces (normally the keyboard selection of the index).
    settings : BuildSettings
        Per-piece settings; ``until`` is taken as ``perform``.
    options : DatasetOptions
        Splits and shards.
    workers, dask_scheduler, on_done
        As in :func:`run_pieces`.
    on_phase : callable, optional
        Called with ``"splits"``, ``"shards <split>"`` and ``"report"`` as the
        build reaches them (for progress display).
    """
    from dataclasses import replace

    from msmd_builder.shards import write_shards
    from msmd_builder.splits import (
        MSMD_TABLE1,
        PARTS,
        import_split,
        make_split,
        split_statistics,
        table1_document,
        write_split,
    )

    started = time.perf_counter()
    phase = on_phase or (lambda _name: None)
    settings = replace(settings, until="perform")
    out = Path(options.out_dir)
    outcomes = run_pieces(
        entries, settings, workers=workers, dask_scheduler=dask_scheduler, on_done=on_done
    )
    phase_seconds = {"pieces": time.perf_counter() - started}

    phase("splits")
    mark = time.perf_counter()
    built_ids = {o.piece_id for o in outcomes if o.status != "failed"}
    built = [e for e in entries if e.piece_id in built_ids]
    failed = {o.piece_id: (o.error_class, o.message) for o in outcomes if o.status == "failed"}
    splits: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    wanted = [(recipe, None) for recipe in options.recipes]
    wanted += [("leave-out", composer) for composer in options.leave_out]
    for recipe, composer in wanted:
        label = recipe if composer is None else f"{composer}-out"
        try:
            split = make_split(built, recipe, seed=settings.seed, leave_out=composer)
        except ConfigError as exc:
            skipped[label] = str(exc)
            continue
        if not split.parts.get("train") or not split.parts.get("test"):
            skipped[label] = "no pieces for its train or test part among the built pieces"
            continue
        splits[split.name] = split
    imports: dict[str, Any] = {}
    for path in options.split_files:
        imported = import_split(path, available_ids=built_ids, index=entries, failed=failed)
        name = Path(path).stem
        imports[name] = imported
        splits[name] = replace(imported.split, name=name)
    for name, split in splits.items():
        write_split(split, out / "splits" / f"{name}.yaml")
    phase_seconds["splits"] = time.perf_counter() - mark

    build_info = {
        "msmd_builder": _package_version(),
        "lilypond": lilypond_version(),
        "seed": settings.seed,
        "recipe": settings.recipe if settings.recipe is not None else MSMD_RECIPE.to_dict(),
        "page_width_px": settings.page_width_px,
        "repeats": settings.repeats,
    }
    manifests: dict[str, Any] = {}
    mark = time.perf_counter()
    for name, split in splits.items():
        phase(f"shards {name}")
        parts = {part: list(split.parts.get(part, ())) for part in PARTS}
        manifests[name] = write_shards(
            name,
            parts,
            work_dir=settings.work_dir,
            out_dir=out,
            max_shard_bytes=options.max_shard_bytes,
            build_info=build_info,
        )
    phase_seconds["shards"] = time.perf_counter() - mark

    phase("report")
    stats = {
        o.piece_id: o.details["alignment"]
        for o in outcomes
        if o.status != "failed" and isinstance(o.details.get("alignment"), dict)
    }
    table1 = table1_document(
        {name: split_statistics(split, stats) for name, split in splits.items()}
    )
    extra = {
        "seed": settings.seed,
        "splits": {name: split.counts() for name, split in splits.items()},
        "skipped_splits": skipped,
        "imports": {
            name: {
                "resolved": imp.resolved,
                "listed": len(imp.listed.piece_ids()),
                "missing": [m.describe() for m in imp.missing],
            }
            for name, imp in imports.items()
        },
        "table1": table1,
        "msmd_table1": table1_document(MSMD_TABLE1),
        "shards": {name: _manifest_summary(m) for name, m in manifests.items()},
        "phase_seconds": {k: round(v, 2) for k, v in phase_seconds.items()},
    }
    wall = time.perf_counter() - started
    json_path, md_path = write_report(
        outcomes,
        out_dir=out,
        name="report",
        wall_seconds=wall,
        workers=workers,
        extra_summary=extra,
        title="Dataset build report",
    )
    return DatasetResult(outcomes, splits, imports, manifests, skipped, json_path, md_path, wall)


def _package_version() -> str:
    from msmd_builder import __version__

    return __version__


def _manifest_summary(manifest: Any) -> dict[str, Any]:
    """Files, bytes and counts per part of a shard manifest, for the report."""
    document = manifest.to_dict()
    parts = {}
    for name, part in document.get("parts", {}).items():
        files = part.get("files", [])
        parts[name] = {
            "files": len(files),
            "bytes": sum(int(f.get("size", 0)) for f in files),
            "counts": part.get("counts", {}),
        }
    return {"parts": parts}
