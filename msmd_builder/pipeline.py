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
import statistics
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path

from msmd_builder.align import align_piece
from msmd_builder.cache import atomic_write_json, atomic_write_text, read_json
from msmd_builder.corpus import PieceEntry, read_index
from msmd_builder.errors import ConfigError, PieceError
from msmd_builder.normalize import normalize_piece
from msmd_builder.render import DEFAULT_TIMEOUT_SEC, render_piece
from msmd_builder.score import build_score
from msmd_builder.tools import lilypond_version

#: The per-piece stages, in order.
STAGES = ("normalize", "render", "score", "align")

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

    def __post_init__(self) -> None:
        if self.until not in STAGES:
            raise ConfigError(f"unknown stage {self.until!r}; choose one of {', '.join(STAGES)}")


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
        return PieceOutcome(entry.piece_id, status, stage, seconds=seconds, details=details)

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

        stage, started = "render", time.perf_counter()
        rendered = render_piece(
            normalized,
            work_dir=settings.work_dir,
            timeout_sec=settings.render_timeout_sec,
            force=settings.force,
        )
        details.update(
            lilypond_seconds=rendered.seconds,
            pdf_files=list(rendered.pdf_files),
            midi_files=list(rendered.midi_files),
            lilypond_errors=rendered.n_errors,
            messages=list(rendered.messages[:5]),
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
        aligned = align_piece(rendered, score, work_dir=settings.work_dir, force=settings.force)
        details["alignment"] = aligned.stats
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


def run_pieces(
    entries: Sequence[PieceEntry],
    settings: BuildSettings,
    *,
    workers: int = 1,
    on_done: Callable[[PieceOutcome], None] | None = None,
) -> list[PieceOutcome]:
    """Process pieces with ``workers`` local processes; results in input order.

    Parameters
    ----------
    entries : sequence of PieceEntry
        The pieces.
    settings : BuildSettings
        Shared settings.
    workers : int
        Number of worker processes; 1 runs in this process.
    on_done : callable, optional
        Called with each outcome as it completes (for progress display).
    """
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    lilypond_version()  # fail early, once, if LilyPond is missing
    outcomes: dict[str, PieceOutcome] = {}
    if workers == 1:
        for entry in entries:
            outcome = process_piece(entry, settings)
            outcomes[entry.piece_id] = outcome
            if on_done:
                on_done(outcome)
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
                    outcome = future.result()
                    outcomes[outcome.piece_id] = outcome
                    if on_done:
                        on_done(outcome)
                for entry in _take(queue, len(done)):
                    pending.add(pool.submit(process_piece, entry, settings))
    return [outcomes[entry.piece_id] for entry in entries]


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
) -> tuple[Path, Path]:
    """Write a build report as JSON (all facts) and Markdown (for people).

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
    }
    document = {"summary": summary, "pieces": [asdict(o) for o in outcomes]}
    json_path = out / f"{name}.json"
    md_path = out / f"{name}.md"
    atomic_write_json(json_path, document)
    atomic_write_text(md_path, _markdown(summary, outcomes, name))
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


def _markdown(summary: dict, outcomes: Sequence[PieceOutcome], name: str) -> str:
    n = summary["pieces"] or 1
    produced = summary["status_counts"].get("ok", 0) + summary["status_counts"].get("degraded", 0)
    rendered = sum(
        1 for o in outcomes if o.details.get("pdf_files") and o.details.get("midi_files")
    )
    lines = [
        f"# Build report: {name}",
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
    lines += ["", "## Failure classes", "", "| class | pieces |", "| --- | ---: |"]
    for cls, count in sorted(summary["failure_classes"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {cls} | {count} |")
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
