"""The orchestrator: run the per-piece stages over many pieces, in parallel.

Each piece goes through :data:`msmd_builder.stages.STAGES` in order, each stage
getting the previous stage's record, its own settings and the piece's folder.  A
stage that fails raises a :class:`~msmd_builder.core.errors.PieceError`, which
ends that piece only and is reported with its class.  A tool or configuration
error (a missing LilyPond or FluidSynth, a changed soundfont, a bad recipe) is
not a property of one piece: it is checked before the first piece
(:func:`preflight`) and, should it still happen, stops the whole run.

Every stage caches its result under a content key, so running the same build
twice does nothing the second time, and a killed build resumes.  Work is spread
over local worker processes (``workers``) or the tasks of a Dask cluster; each
handles whole pieces, so one LilyPond crash or hang costs one piece and its time
limit, nothing else.  A worker process that dies is replaced and the pieces it
held are tried once more, each in a process of its own, so a piece that kills
its worker every time is reported (``worker-lost``) without taking the pieces
beside it down too.
"""

from __future__ import annotations

import itertools
import resource
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from typing import Any

from msmd_builder.core.errors import (
    ConfigError,
    MsmdError,
    NotUnrollableError,
    PieceError,
    ReadingOrderError,
    RepeatsOutOfStepError,
    WorkerLostError,
)
from msmd_builder.core.workdir import WorkDir
from msmd_builder.pipeline.settings import BuildSettings
from msmd_builder.stages import stages_until
from msmd_builder.stages.align.repeats import RepeatsMemo
from msmd_builder.stages.corpus.index import PieceEntry

__all__ = ["PieceOutcome", "preflight", "process_piece", "run_pieces", "build_piece"]


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
        Stage facts worth reporting (each stage record's ``report_details()``).
    """

    piece_id: str
    status: str
    stage: str
    error_class: str = ""
    message: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    details: dict[str, object] = field(default_factory=dict)

    @classmethod
    def failure(
        cls, entry: PieceEntry, stage: str, error: PieceError, **fields_: Any
    ) -> PieceOutcome:
        """Return the outcome of a piece that failed with ``error`` at ``stage``."""
        return cls(
            entry.piece_id,
            "failed",
            stage,
            error_class=error.error_class,
            message=error.message,
            **fields_,
        )


def preflight(settings: BuildSettings) -> None:
    """Check, once and before any piece, the tools and settings of every stage that will run.

    Raises
    ------
    ToolNotFoundError, ConfigError
        With the fix in the message (what to install, which file changed).
    """
    for stage in stages_until(settings.until):
        stage.preflight(settings.of(stage.name))


def process_piece(entry: PieceEntry, settings: BuildSettings) -> PieceOutcome:
    """Run the stages of one piece up to ``settings.until``.

    A :class:`PieceError` becomes a failed outcome; an unexpected exception
    (a bug) becomes a failed outcome of class ``internal`` with its traceback;
    any other :class:`MsmdError` (a tool or configuration error) is raised.

    When LilyPond's unfolded MIDI does not follow the score's repeat
    structure in every voice (a repeat written in some voices only), the piece
    is rendered again with ``repeats="timeline"`` and unrolled for every voice
    alike.  When the performance then fails the reading-order check or its
    written jump cannot be read, and ``settings.align.repeats_fallback`` is on,
    the piece is rendered again in printed order and flagged, the last resort
    (see :mod:`msmd_builder.stages.align.repeats`).
    """
    piece_dir = WorkDir(settings.work_dir).piece(entry.piece_id)
    seconds: dict[str, float] = {}
    details: dict[str, object] = {"composer": entry.composer_dir, "title": entry.title}
    stages = stages_until(settings.until)
    name = stages[0].name
    started = time.perf_counter()
    status = "ok"
    try:
        record: Any = entry
        memo: RepeatsMemo | None = None
        normalized: Any = None
        position = 0
        while position < len(stages):
            stage = stages[position]
            name, started = stage.name, time.perf_counter()
            try:
                record = stage.run(record, settings.of(name), piece_dir, force=settings.force)
            except RepeatsOutOfStepError as exc:
                if settings.render.repeats != "unfolded":
                    raise
                # A repeat written in some voices only: play every voice by the
                # score's repeat structure (a reading of the score, not a fallback).
                assert memo is not None
                memo.record_timeline(exc.message)
                settings = settings.with_repeats("timeline")
                details.update(memo.details())
                for later in stages[1:]:
                    seconds.pop(later.name, None)
                record, position = normalized, 1
                continue
            except (ReadingOrderError, NotUnrollableError) as exc:
                if settings.render.repeats == "folded" or not settings.align.repeats_fallback:
                    raise
                # The performance is out of step with the print, or a written jump
                # does not read into one playing order: the last resort is the
                # printed order, as MSMD did.
                assert memo is not None
                memo.record_fallback(exc.message, exc.error_class)
                settings = settings.with_repeats("folded")
                details.update(memo.details())
                for later in stages[1:]:
                    seconds.pop(later.name, None)
                record, position = normalized, 1
                continue
            seconds[name] = time.perf_counter() - started
            details.update(record.report_details())
            if name == "normalize":
                normalized = record
                memo = RepeatsMemo(piece_dir, normalized)
                known = memo.mode() if settings.render.repeats == "unfolded" else None
                if known == "folded" and not settings.align.repeats_fallback:
                    # Strict: no printed order; the timeline, if that was needed.
                    known = "timeline" if memo.timeline_reason() else None
                if known:
                    settings = settings.with_repeats(known)
                    memo_details = memo.details()
                    if known == "timeline":
                        memo_details.pop("repeats_fallback", None)
                        memo_details.pop("repeats_fallback_class", None)
                    details.update(memo_details)
            elif name == "render":
                status = record.status
            position += 1
        details["worker_max_rss_mb"] = _max_rss_mb()
        return PieceOutcome(entry.piece_id, status, name, seconds=seconds, details=details)
    except PieceError as exc:
        seconds.setdefault(name, time.perf_counter() - started)
        details["detail"] = exc.detail[-2000:]
        return PieceOutcome.failure(entry, name, exc, seconds=seconds, details=details)
    except MsmdError:
        raise  # a tool or configuration error stops the run
    except Exception as exc:  # noqa: BLE001 - a bug in one piece must not stop the build
        seconds.setdefault(name, time.perf_counter() - started)
        return PieceOutcome(
            entry.piece_id,
            "failed",
            name,
            error_class="internal",
            message=f"{type(exc).__name__}: {exc}",
            seconds=seconds,
            details={"traceback": traceback.format_exc()[-4000:]},
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
    perform_roles: Mapping[str, tuple[str, ...]] | None = None,
) -> list[PieceOutcome]:
    """Process pieces in parallel, longest first; results in input order.

    Pieces are handed out by their expected cost, longest first
    (:mod:`msmd_builder.pipeline.schedule`), so no long piece is left for the
    end while the other workers idle; what each took is kept for the next run.

    Parameters
    ----------
    entries : sequence of PieceEntry
        The pieces.
    settings : BuildSettings
        Shared settings.  With a Dask cluster, the work directory and the
        corpus must be paths every worker sees (a shared filesystem).
    workers : int
        Number of local worker processes; 1 runs in this process.  Ignored
        with ``dask_scheduler``.
    dask_scheduler : str, optional
        Address of a Dask distributed scheduler (``tcp://host:8786``); each
        piece becomes one task on its workers.
    on_done : callable, optional
        Called with each outcome as it completes (for progress display).
    perform_roles : mapping, optional
        Piece id -> the split roles its performances are for
        (:attr:`PerformSettings.roles`); pieces not in it get every role.

    Raises
    ------
    ToolNotFoundError, ConfigError
        Before any piece runs (:func:`preflight`), or as soon as a worker hits one.
    """
    from msmd_builder.pipeline.schedule import estimate_costs, longest_first, record_timings

    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    preflight(settings)
    outcomes: dict[str, PieceOutcome] = {}
    costs = estimate_costs(entries, settings.work_dir, settings.normalize.mutopia_root)
    queue = longest_first(entries, costs)
    settings_of = _settings_per_piece(settings, perform_roles)

    def record(outcome: PieceOutcome) -> None:
        outcomes[outcome.piece_id] = outcome
        if on_done:
            on_done(outcome)

    try:
        if dask_scheduler is not None:
            _run_on_dask(queue, settings_of, dask_scheduler, record)
        elif workers == 1:
            for entry in queue:
                record(process_piece(entry, settings_of(entry)))
        else:
            _run_on_pool(queue, settings_of, workers, record)
    finally:
        record_timings(settings.work_dir, {i: sum(o.seconds.values()) for i, o in outcomes.items()})
    return [outcomes[entry.piece_id] for entry in entries]


def _settings_per_piece(
    settings: BuildSettings, perform_roles: Mapping[str, tuple[str, ...]] | None
) -> Callable[[PieceEntry], BuildSettings]:
    """Return the settings of each piece: the shared ones, with its perform roles if given."""
    if perform_roles is None:
        return lambda _entry: settings

    def settings_of(entry: PieceEntry) -> BuildSettings:
        roles = perform_roles.get(entry.piece_id)
        if roles is None:
            return settings
        return replace(settings, perform=replace(settings.perform, roles=tuple(roles)))

    return settings_of


def _run_on_pool(
    entries: Sequence[PieceEntry],
    settings: Callable[[PieceEntry], BuildSettings],
    workers: int,
    record: Callable[[PieceOutcome], None],
) -> None:
    """Run the pieces on local worker processes; a dead worker's pieces are retried alone.

    When a worker process dies, the pool fails every piece it holds, running or
    waiting, and cannot say which one killed it.  Each of those pieces is tried
    once more in a process of its own (:func:`_retry_alone`), where a death can
    only be its own; the rest of the queue then goes on in a fresh pool.
    """
    queue: Iterator[PieceEntry] = iter(entries)
    while True:
        lost, unsent = _run_shared(queue, settings, workers, record)
        if not lost and not unsent:
            return
        _retry_alone(lost, settings, workers, record)
        queue = itertools.chain(unsent, queue)


def _run_shared(
    queue: Iterator[PieceEntry],
    settings: Callable[[PieceEntry], BuildSettings],
    workers: int,
    record: Callable[[PieceOutcome], None],
) -> tuple[list[PieceEntry], list[PieceEntry]]:
    """Run pieces from ``queue`` on one pool until the queue is empty or a worker dies.

    Returns
    -------
    lost : list of PieceEntry
        Pieces the pool held when a worker died (empty when none died).
    unsent : list of PieceEntry
        Pieces taken from the queue but not handed to the pool, which broke first.
    """
    lost: list[PieceEntry] = []
    unsent: list[PieceEntry] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: dict[Future[PieceOutcome], PieceEntry] = {}
        # Keep a bounded number of tasks in flight so progress stays live.
        batch = _take(queue, workers * 2)
        while batch or pending:
            for position, entry in enumerate(batch):
                try:
                    pending[pool.submit(process_piece, entry, settings(entry))] = entry
                except BrokenProcessPool:
                    unsent = batch[position:]
                    break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                entry = pending.pop(future)
                try:
                    record(future.result())
                except BrokenProcessPool:
                    lost.append(entry)
                except MsmdError:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
            # A broken pool takes nothing more: drain it, then start a new one.
            batch = [] if lost or unsent else _take(queue, len(done))
    return lost, unsent


def _retry_alone(
    entries: Sequence[PieceEntry],
    settings: Callable[[PieceEntry], BuildSettings],
    workers: int,
    record: Callable[[PieceOutcome], None],
) -> None:
    """Build each piece in a process of its own, ``workers`` at a time.

    A piece whose own process dies is reported as :class:`WorkerLostError`;
    the others are not affected by it.
    """
    waiting = list(entries)
    running: dict[Future[PieceOutcome], tuple[PieceEntry, ProcessPoolExecutor]] = {}
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                entry = waiting.pop(0)
                alone = ProcessPoolExecutor(max_workers=1)
                running[alone.submit(process_piece, entry, settings(entry))] = (entry, alone)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                entry, alone = running.pop(future)
                alone.shutdown(wait=True)
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    error = WorkerLostError(
                        "the worker process died twice while building this piece, the second "
                        "time building it alone (killed, or out of memory)"
                    )
                    outcome = PieceOutcome.failure(entry, "worker", error)
                record(outcome)
    finally:
        for _, alone in running.values():
            alone.shutdown(wait=True, cancel_futures=True)


def _run_on_dask(
    entries: Sequence[PieceEntry],
    settings: Callable[[PieceEntry], BuildSettings],
    address: str,
    record: Callable[[PieceOutcome], None],
) -> None:
    """Run :func:`process_piece` for every entry as tasks of a Dask cluster.

    Tasks are impure (``pure=False``): a rerun must look at the files again,
    not reuse a result the scheduler remembers.  A worker lost mid-task makes
    Dask retry the piece elsewhere (stages are idempotent, so that is safe);
    a task Dask gives up on is reported as ``worker-lost``.  A tool or
    configuration error raised by a task stops the build.
    """
    try:
        from distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover - distributed is a dependency
        raise ConfigError("--dask-scheduler needs the `distributed` package") from exc
    run = uuid.uuid4().hex[:8]  # two builds on one cluster must not share task keys
    with Client(address, timeout="30s") as client:
        # Higher priority runs first: the entries come longest first.
        futures = [
            client.submit(
                process_piece,
                entry,
                settings(entry),
                pure=False,
                key=f"piece-{entry.piece_id}-{run}",
                priority=len(entries) - rank,
            )
            for rank, entry in enumerate(entries)
        ]
        by_key = {f.key: entry for f, entry in zip(futures, entries, strict=True)}
        for future in as_completed(futures):
            try:
                outcome = future.result()
            except MsmdError:
                client.cancel(futures)
                raise
            except Exception as exc:  # noqa: BLE001 - a lost task must not stop the build
                error = WorkerLostError(f"task failed on the cluster: {type(exc).__name__}: {exc}")
                outcome = PieceOutcome.failure(by_key[future.key], "dask", error)
            record(outcome)
            future.release()


def _take(iterator: Iterator[PieceEntry], n: int) -> list[PieceEntry]:
    taken: list[PieceEntry] = []
    if n <= 0:
        return taken
    for item in iterator:
        taken.append(item)
        if len(taken) >= n:
            break
    return taken


def build_piece(work: WorkDir, piece_id: str, *, until: str) -> PieceOutcome:
    """Build one piece of an indexed work directory up to ``until`` (a no-op when cached).

    Raises
    ------
    ConfigError
        If the piece is not in the index or it fails (with its class and message).
    """
    from msmd_builder.pipeline.settings import build_settings
    from msmd_builder.stages.corpus.index import corpus_root, find_piece, index_entries

    entry = find_piece(index_entries(work), piece_id)
    if entry is None:
        raise ConfigError(f"{piece_id!r} is not in {work.index}")
    settings = build_settings(work.root, corpus_root(work), until=until)
    preflight(settings)
    outcome = process_piece(entry, settings)
    if outcome.status == "failed":
        raise ConfigError(
            f"{piece_id} failed at {outcome.stage}: {outcome.error_class}: {outcome.message}"
        )
    return outcome
