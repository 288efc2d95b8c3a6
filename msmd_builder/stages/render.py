r"""Stage ``render``: run LilyPond on a normalized piece -> PDF, unfolded MIDI, log.

LilyPond runs once per piece with ``lilypond_patches/msmd.ily`` loaded through
``-dinclude-settings`` (by way of a two-line ``msmd-settings.ily`` in the render
folder that first defines the hooks' settings).  Those hooks split every typeset
score into the score as printed (for the PDF) and a deep copy with all repeats
unfolded (for the MIDI; or only the tremolo and percent ones, on the printed
timeline, with ``repeats="timeline"``; or none, in printed order, with
``repeats="folded"``), in the same process, so the PDF and the MIDI come from
one parse of the music.  They also write the score's volta repeats to a table
(``*.msmd-repeats.tsv``) for the align stage.

LilyPond runs in the main file's folder (as Mutopia's files expect, so that
``\epsfile`` graphics resolve), under the per-piece resource limits and, where
bubblewrap works, inside the sandbox of :mod:`msmd_builder.lilypond.sandbox`:
it sees the normalized sources read-only and writes only ``render-scratch/``,
whose regular files are then moved into ``render/``.

Each run ends in a :class:`RenderResult` written to ``render/render.json``.  A
failed run raises the :class:`~msmd_builder.core.errors.PieceError` subclass that
classifies it (syntax, scheme, missing include, crash, timeout, memory, no
output); the failure is cached like a success, so a rebuild does not retry an
unchanged broken piece.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Any

from msmd_builder.core.cache import StageCache, output_sizes, sha256_file, sized_outputs
from msmd_builder.core.errors import (
    ERROR_CLASSES,
    ConfigError,
    LilyPondCrash,
    LilyPondError,
    LilyPondMemoryError,
    LilyPondSyntaxError,
    LilyPondTimeout,
    MissingIncludeError,
    NoOutputError,
    PieceError,
    SchemeError,
)
from msmd_builder.core.workdir import PieceDir
from msmd_builder.lilypond.pages import RELAYOUTS, off_page
from msmd_builder.lilypond.sandbox import SandboxSettings, SandboxView
from msmd_builder.lilypond.tools import (
    ToolRun,
    lilypond_executable,
    lilypond_install_dir,
    lilypond_version,
    patches_dir,
    run_tool,
)
from msmd_builder.stages.normalize import NormalizedPiece

__all__ = [
    "DEFAULT_TIMEOUT_SEC",
    "REPEATS_MODES",
    "RECORD_FORMAT",
    "RenderSettings",
    "RenderResult",
    "classify_log",
    "preflight",
    "run",
]

#: Per-piece wall-clock limit for LilyPond, seconds.
DEFAULT_TIMEOUT_SEC = 300.0
#: How the MIDI plays repeats: unfolded as performed; on the printed timeline
#: (volta repeats folded, for the align stage to unroll for every voice alike);
#: or folded in printed order (MSMD).
REPEATS_MODES = ("unfolded", "timeline", "folded")
STAGE_VERSION = 4
#: ``format_name`` of ``render/render.json``.
RECORD_FORMAT = "msmd-builder/render-record"
#: Layout version of ``render/render.json`` (2: with the outputs' ``output_sizes``).
RECORD_VERSION = 2
_MAX_MESSAGES = 20

_ERROR_LINE = re.compile(r"(?:^|: )(?:fatal )?error: ", re.IGNORECASE)
_WARNING_LINE = re.compile(r"(?:^|: )warning: ", re.IGNORECASE)
_NATURAL = re.compile(r"(\d+)")
#: What the garbage collector and the C++ runtime print when an allocation fails.
_OUT_OF_MEMORY = re.compile(
    r"Out of Memory|out of memory|Failed to expand heap|Too many heap sections|"
    r"Cannot allocate memory|std::bad_alloc|Insufficient memory"
)


@dataclass(frozen=True)
class RenderResult:
    """What LilyPond produced for one piece.

    Attributes
    ----------
    piece_id : str
        The piece.
    status : str
        ``"ok"`` (no LilyPond errors), ``"degraded"`` (errors reported but a PDF
        and a MIDI were written) or ``"failed"``.
    render_dir : str
        Folder of the outputs.
    pdf_files, midi_files : tuple of str
        Output file names inside ``render_dir``, in LilyPond's order.
    lilypond_version : str
        Version of the LilyPond that ran.
    seconds : float
        LilyPond's wall-clock time.
    returncode : int
        LilyPond's exit status (negative: killed by that signal).
    n_errors, n_warnings : int
        Counts of ``error:`` and ``warning:`` lines in the log.
    messages : tuple of str
        The first error lines (or warning lines when there are no errors).
    error : dict
        For a failed or degraded run, the classified LilyPond error as
        ``{"error_class", "message", "detail"}``; else empty.
    cache_key : str
        Hash of sources, patches, settings and LilyPond version.
    repeats : str
        How the MIDI plays repeats: ``"unfolded"`` (as performed),
        ``"timeline"`` (the printed timeline, for the align stage to unroll) or
        ``"folded"`` (printed order, each alternative once, as MSMD).
    sandbox : str
        How LilyPond was confined: ``"bwrap"``, ``"off"`` (not asked for) or
        ``"unavailable"`` (asked for with ``auto`` but bubblewrap does not work here).
    layout : str
        ``""`` when the piece is laid out as written, else the re-layout of
        :data:`~msmd_builder.lilypond.pages.RELAYOUTS` that kept its music on
        its pages (or the last one tried).
    crashes : int
        LilyPond runs of this rendering that crashed (killed by SIGSEGV,
        SIGFPE, ...) and were run again (:data:`CRASH_RETRIES`).
    """

    piece_id: str
    status: str
    render_dir: str
    pdf_files: tuple[str, ...]
    midi_files: tuple[str, ...]
    lilypond_version: str
    seconds: float
    returncode: int
    n_errors: int
    n_warnings: int
    messages: tuple[str, ...] = field(default_factory=tuple)
    error: dict[str, str] = field(default_factory=dict)
    cache_key: str = ""
    repeats: str = "unfolded"
    sandbox: str = "off"
    layout: str = ""
    crashes: int = 0

    @property
    def ok(self) -> bool:
        """True when a PDF and a MIDI were produced."""
        return self.status in ("ok", "degraded")

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-serialisable dict."""
        data = asdict(self)
        data["pdf_files"] = list(self.pdf_files)
        data["midi_files"] = list(self.midi_files)
        data["messages"] = list(self.messages)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RenderResult:
        """Inverse of :meth:`to_dict` (a stage record's format fields are ignored)."""
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        for name in ("pdf_files", "midi_files", "messages"):
            values[name] = tuple(values[name])
        return cls(**values)

    def report_details(self) -> dict[str, Any]:
        """Return what the build report shows of this stage."""
        details: dict[str, Any] = {
            "lilypond_seconds": self.seconds,
            "pdf_files": list(self.pdf_files),
            "midi_files": list(self.midi_files),
            "lilypond_errors": self.n_errors,
            "messages": list(self.messages[:5]),
            "repeats": self.repeats,
            "sandbox": self.sandbox,
        }
        if self.layout:
            details["relayout"] = self.layout
        if self.crashes:
            details["lilypond_crashes_retried"] = self.crashes
        if self.error:
            details["degraded_class"] = self.error["error_class"]
        return details

    def raise_error(self) -> None:
        """Re-raise the stored failure as its :class:`PieceError` subclass."""
        if self.status == "failed" and self.error:
            cls = ERROR_CLASSES.get(self.error["error_class"], PieceError)
            raise cls(self.error["message"], detail=self.error.get("detail", ""))


def _natural_key(name: str) -> list[object]:
    """Order LilyPond's outputs as written: ``x``, ``x-1``, ``x-2``, ..., ``x-10``."""
    return [int(part) if part.isdigit() else part for part in _NATURAL.split(Path(name).stem)]


def classify_log(
    log: str,
    *,
    returncode: int,
    timed_out: bool,
    timeout_sec: float,
    limits: SandboxSettings | None = None,
    cpu_seconds: float = 0.0,
) -> PieceError:
    """Turn a failed LilyPond run into the matching :class:`PieceError`.

    Parameters
    ----------
    log : str
        LilyPond's standard error.
    returncode : int
        Exit status; negative for a signal.
    timed_out : bool
        Whether the run was killed at the time limit.
    timeout_sec : float
        The limit, for the message.
    limits : SandboxSettings, optional
        The run's CPU-time and memory limits.
    cpu_seconds : float
        CPU time the run used: a run killed at its CPU-time limit is a ``timeout``.

    Returns
    -------
    PieceError
        The most specific class that explains the failure, with the first
        relevant log line as message and the log's tail as detail.
    """
    lines = log.splitlines()
    detail = "\n".join(lines[-40:])

    def first(pattern: str) -> str | None:
        regex = re.compile(pattern, re.IGNORECASE)
        return next((line.strip() for line in lines if regex.search(line)), None)

    memory_line = first(_OUT_OF_MEMORY.pattern)
    if memory_line:
        limit = f" of {limits.memory_mb} MiB" if limits else ""
        return LilyPondMemoryError(
            f"LilyPond ran out of its address-space limit{limit}: {memory_line}", detail=detail
        )
    if timed_out:
        return LilyPondTimeout(
            f"LilyPond ran past {timeout_sec:.0f} s and was killed", detail=detail
        )
    cpu_limit_hit = limits is not None and cpu_seconds >= int(limits.cpu_sec)
    if returncode == -signal.SIGXCPU or (returncode == -signal.SIGKILL and cpu_limit_hit):
        limit = f" of {limits.cpu_sec:.0f} s" if limits else ""
        return LilyPondTimeout(
            f"LilyPond ran past its CPU-time limit{limit} and was stopped", detail=detail
        )
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return LilyPondCrash(f"LilyPond was killed by {name}", detail=detail)
    line = first(r"cannot find file|can't find file|file not found")
    if line:
        return MissingIncludeError(line, detail=detail)
    line = first(r"syntax error|unexpected|unterminated|not a note name|unknown escaped string")
    if line and _ERROR_LINE.search(line):
        return LilyPondSyntaxError(line, detail=detail)
    line = first(
        r"GUILE signaled an error|^ERROR: |Unbound variable|Wrong type argument|"
        r"In procedure|wrong number of arguments|Guile error"
    )
    if line:
        scheme_line = first(r"Unbound variable|Wrong type|In procedure|wrong number") or line
        return SchemeError(scheme_line, detail=detail)
    if returncode > 1 or first(r"Segmentation fault|Aborted|core dumped|Assertion"):
        return LilyPondCrash(f"LilyPond exited with status {returncode}", detail=detail)
    line = first(_ERROR_LINE.pattern)
    if line:
        return LilyPondError(line, detail=detail)
    return NoOutputError(
        "LilyPond wrote no PDF or no MIDI (nothing typeset or no music)", detail=detail
    )


@dataclass(frozen=True)
class RenderSettings:
    r"""Settings of the render stage.

    Attributes
    ----------
    timeout_sec : float
        Hard wall-clock limit for the LilyPond run, seconds.
    repeats : {"unfolded", "timeline", "folded"}
        ``"unfolded"``: the MIDI plays every repeat (volta, percent, tremolo)
        as performed, each voice as it is written.  ``"timeline"``: it plays
        the printed timeline, volta repeats folded and tremolo and percent
        repeats where they are printed; the align stage unrolls it by the
        score's repeat structure for every voice alike (for repeats written in
        some voices only).  ``"folded"``: it plays the music in printed order,
        each notehead once and every volta alternative in turn, like MSMD's
        MIDI.  Source ``\repeat unfold`` is printed in full and played in
        every mode.
    sandbox : SandboxSettings
        Whether LilyPond runs inside bubblewrap, and its CPU-time and memory limits.
    """

    timeout_sec: float = DEFAULT_TIMEOUT_SEC
    repeats: str = "unfolded"
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)

    def __post_init__(self) -> None:
        if self.repeats not in REPEATS_MODES:
            raise ConfigError(
                f"repeats must be one of {', '.join(REPEATS_MODES)}, got {self.repeats!r}"
            )
        if not self.timeout_sec > 0:
            raise ConfigError(f"timeout_sec must be > 0, got {self.timeout_sec!r}")


def preflight(settings: RenderSettings) -> None:
    """Fail at once, with the fix, if LilyPond or the hooks are missing.

    Also when the sandbox is asked for (``on``) and bubblewrap does not work here.
    """
    lilypond_version()
    patches_dir()
    settings.sandbox.active()


def _output_names(render_dir: Path, result: RenderResult) -> list[str]:
    """Files a render record stands for: PDFs, MIDIs and every table the hooks wrote.

    The later stages read all of them (the align stage its performed-notes and
    marks tables too); LilyPond's log is for people and not checked.
    """
    if not result.ok:
        return []
    tables = sorted(p.name for p in render_dir.glob("*.msmd-*.tsv"))
    return [*result.pdf_files, *result.midi_files, *tables]


def run(
    piece: NormalizedPiece, settings: RenderSettings, piece_dir: PieceDir, *, force: bool = False
) -> RenderResult:
    r"""Render one normalized piece to PDF and MIDI (repeats unfolded unless asked otherwise).

    Parameters
    ----------
    piece : NormalizedPiece
        Output of the normalize stage.
    settings : RenderSettings
        Time limit and how repeats are played.
    piece_dir : PieceDir
        The piece's work folder; outputs go to its ``render/``.
    force : bool
        Re-render even when a result with the same cache key exists.

    Returns
    -------
    RenderResult
        With ``status`` ``"ok"`` or ``"degraded"``.

    Raises
    ------
    PieceError
        The classified failure (also recorded in ``render.json``, so an
        unchanged broken piece is not rendered again).
    """
    render_dir = piece_dir.render
    patches = patches_dir()
    cache = StageCache.for_document(
        piece_dir.render_record,
        {
            "stage": "render",
            "stage_version": STAGE_VERSION,
            "sources": piece.content_key or piece.cache_key,
            "patches": {p.name: sha256_file(p) for p in sorted(patches.glob("*.ily"))},
            "lilypond": lilypond_version(),
            "timeout_sec": settings.timeout_sec,
            "repeats": settings.repeats,
            "cpu_sec": settings.sandbox.cpu_sec,
            "memory_mb": settings.sandbox.memory_mb,
        },
        format_name=RECORD_FORMAT,
        format_version=RECORD_VERSION,
    )
    hit = cache.lookup(
        lambda record: sized_outputs(render_dir, record["output_sizes"]), force=force
    )
    if hit is not None:
        previous = RenderResult.from_dict(hit)
        previous.raise_error()
        return previous

    rendering = _render_on_the_page(piece, settings, piece_dir)
    run_, log, layout = rendering.run, rendering.log, rendering.layout
    pdfs, midis, produced = rendering.pdfs, rendering.midis, rendering.produced
    lines = log.splitlines()
    errors = [line.strip() for line in lines if _ERROR_LINE.search(line)]
    warnings = [line.strip() for line in lines if _WARNING_LINE.search(line)]
    classified: PieceError | None = None
    out_of_memory = bool(_OUT_OF_MEMORY.search(log))
    if errors or not produced or out_of_memory:
        classified = classify_log(
            log,
            returncode=run_.returncode,
            timed_out=run_.timed_out,
            timeout_sec=settings.timeout_sec,
            limits=settings.sandbox,
            cpu_seconds=run_.cpu_seconds,
        )
    # A missing include always loses music, whatever LilyPond managed to write; so does
    # an allocation that failed (Guile drops the expression that asked for it).
    if not produced or isinstance(classified, MissingIncludeError | LilyPondMemoryError):
        status = "failed"
    else:
        status = "degraded" if errors else "ok"
    failure = classified if status == "failed" else None
    if isinstance(failure, LilyPondCrash) and rendering.crashes:
        failure = LilyPondCrash(
            f"{failure.message}, in each of {rendering.crashes + 1} runs", detail=failure.detail
        )
        classified = failure
    result = RenderResult(
        piece_id=piece.piece_id,
        status=status,
        render_dir=str(render_dir.resolve()),
        pdf_files=tuple(pdfs),
        midi_files=tuple(midis),
        lilypond_version=lilypond_version(),
        seconds=round(run_.seconds, 4),
        returncode=run_.returncode,
        n_errors=len(errors),
        n_warnings=len(warnings),
        messages=tuple((errors or warnings)[:_MAX_MESSAGES]),
        error=classified.to_dict() if classified else {},
        cache_key=cache.key,
        repeats=settings.repeats,
        sandbox="bwrap" if run_.sandboxed else settings.sandbox.describe(),
        layout=layout,
        crashes=rendering.crashes,
    )
    sizes = output_sizes(render_dir, _output_names(render_dir, result))
    cache.store({**result.to_dict(), "output_sizes": sizes})
    if failure is not None:
        raise failure
    return result


@dataclass(frozen=True)
class _Rendering:
    """One LilyPond run of a piece and what it left in ``render/``."""

    run: ToolRun
    log: str
    layout: str
    pdfs: list[str]
    midis: list[str]
    crashes: int = 0

    @property
    def produced(self) -> bool:
        """True when a PDF and a MIDI were written by a run that ended by itself."""
        return (
            bool(self.pdfs and self.midis) and not self.run.timed_out and self.run.returncode >= 0
        )


#: How often a LilyPond run that crashed is run again.  LilyPond 2.25 crashes
#: on some sources now and then, not every time (SIGSEGV or SIGFPE, early in
#: the run, e.g. about half of the runs of Chopin Op. 25 No. 2); a run that
#: ends by itself writes the same files whether or not one crashed before it.
CRASH_RETRIES = 2
#: Signals that mean LilyPond crashed (not a limit: SIGKILL, SIGXCPU).
_CRASH_SIGNALS = frozenset(
    {signal.SIGSEGV, signal.SIGFPE, signal.SIGBUS, signal.SIGABRT, signal.SIGILL}
)


def _crashed(run_: ToolRun, log: str) -> bool:
    """Tell whether a run crashed, not at a limit (time, memory) that would stop it again."""
    return (
        not run_.timed_out and -run_.returncode in _CRASH_SIGNALS and not _OUT_OF_MEMORY.search(log)
    )


def _render_once(
    piece: NormalizedPiece, settings: RenderSettings, piece_dir: PieceDir, layout: str
) -> _Rendering:
    run_, log = _run_lilypond(piece, settings, piece_dir, layout)
    crashes = 0
    while _crashed(run_, log) and crashes < CRASH_RETRIES:
        crashes += 1
        run_, log = _run_lilypond(piece, settings, piece_dir, layout)
    render_dir = piece_dir.render
    pdfs = sorted((p.name for p in render_dir.glob("*.pdf")), key=_natural_key)
    midis = sorted(
        (p.name for p in render_dir.iterdir() if p.suffix in (".midi", ".mid")),
        key=_natural_key,
    )
    return _Rendering(run_, log, layout, pdfs, midis, crashes)


def _render_on_the_page(
    piece: NormalizedPiece, settings: RenderSettings, piece_dir: PieceDir
) -> _Rendering:
    """Render the piece; while its music runs past a page's edge, with the next re-layout.

    A re-layout that makes LilyPond fail ends the search: the piece is rendered
    again with the last layout that produced output, and the score stage
    reports what is still off the page.
    """
    rendering = _render_once(piece, settings, piece_dir, "")
    for layout in RELAYOUTS:
        if not rendering.produced or not off_page(piece_dir.render, rendering.pdfs):
            return rendering
        previous = rendering.layout
        rendering = _render_once(piece, settings, piece_dir, layout)
        if not rendering.produced:
            return _render_once(piece, settings, piece_dir, previous)
    return rendering


def _run_lilypond(
    piece: NormalizedPiece, settings: RenderSettings, piece_dir: PieceDir, layout: str
) -> tuple[ToolRun, str]:
    """Run LilyPond once, confined; leave its regular output files and its log in ``render/``.

    LilyPond writes only into the scratch folder.  What it wrote is moved into
    a fresh ``render/`` afterwards, regular files only: a symbolic link the
    piece planted there would otherwise make a later write leave the folder.

    Returns
    -------
    run : ToolRun
    log : str
        LilyPond's standard error, with the piece's folders removed from paths.
    """
    render_dir, scratch = piece_dir.render, piece_dir.render_scratch
    for folder in (render_dir, scratch):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    patches = patches_dir()
    main = PurePosixPath(piece.main_file)
    main_dir = Path(piece.source_dir) / main.parent
    # The hooks read their settings from Scheme defines made before msmd.ily loads.
    hook_settings = scratch / "msmd-settings.ily"
    lines = [f"#(define msmd-repeats '{settings.repeats})", '\\include "msmd.ily"']
    if layout:
        lines += [f"#(define msmd-relayout '{layout})", '\\include "msmd-relayout.ily"']
    hook_settings.write_text("\n".join(lines) + "\n", encoding="utf-8")
    command = [
        str(lilypond_executable().resolve()),
        f"-dinclude-settings={hook_settings.resolve()}",
        f"--include={patches.resolve()}",
        "--pdf",
        f"--output={scratch.resolve() / main.stem}",
        main.name,
    ]
    view = SandboxView(
        read_only=(str(lilypond_install_dir()), str(patches), piece.source_dir),
        writable=(str(scratch),),
    )
    run_ = run_tool(
        command,
        timeout_sec=settings.timeout_sec,
        cwd=main_dir,
        confinement=settings.sandbox,
        view=view,
    )
    for path in scratch.iterdir():
        if path.is_file() and not path.is_symlink() and path != hook_settings:
            os.replace(path, render_dir / path.name)
    shutil.rmtree(scratch)
    log = run_.stderr
    for folder in (str(main_dir), piece.source_dir, str(scratch.resolve())):
        log = log.replace(folder.rstrip("/") + "/", "")
    (render_dir / "lilypond.log").write_text(log, encoding="utf-8")
    return run_, log
