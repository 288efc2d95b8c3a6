"""Exception hierarchy: one root, one subclass per failure kind.

Per-piece failures derive from :class:`PieceError` and carry a short, stable
``error_class`` string that build reports group by.  Anything that is not a
property of one piece (a missing binary, a bad option) derives from
:class:`MsmdError` directly and stops the run.
"""

from __future__ import annotations

__all__ = [
    "MsmdError",
    "ToolNotFoundError",
    "ConfigError",
    "FormatError",
    "AudioInputError",
    "PieceError",
    "SourceEncodingError",
    "MissingIncludeError",
    "UnsafeIncludeError",
    "ConvertLyError",
    "LilyPondSyntaxError",
    "SchemeError",
    "LilyPondCrash",
    "LilyPondTimeout",
    "LilyPondMemoryError",
    "NoOutputError",
    "LilyPondError",
    "NothingToAlignError",
    "NotUnrollableError",
    "VerificationError",
    "SynthesisError",
    "ReadingOrderError",
    "VoiceOrderError",
    "RepeatsOutOfStepError",
    "NotBuiltError",
    "WorkerLostError",
    "RecordingError",
    "UnreadableRecordingError",
    "EmptyRecordingError",
    "SilentRecordingError",
    "RecordingTooLongError",
    "RecordingMismatchError",
    "ERROR_CLASSES",
]


class MsmdError(Exception):
    """Root of every error raised by msmd-builder."""


class ToolNotFoundError(MsmdError):
    """A required program or data file (LilyPond, a soundfont) is missing."""


class ConfigError(MsmdError):
    """An option or settings value is invalid."""


class FormatError(MsmdError):
    """A file is not of the expected format or version, or is damaged (truncated, tampered)."""


class AudioInputError(MsmdError):
    """A recording given to ``msmd-build identify`` cannot be used.

    Parameters
    ----------
    kind : {'unreadable', 'silent', 'too-short'}
        What is wrong: no audio decoder reads the file; it holds no sound
        above -80 dBFS; it is shorter than one excerpt of the model.
    message : str
        The details (file, durations).
    """

    KINDS = ("unreadable", "silent", "too-short")

    def __init__(self, kind: str, message: str) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, got {kind!r}")
        super().__init__(f"[{kind}] {message}")
        self.kind = kind


class PieceError(MsmdError):
    """A failure confined to one piece; the build records it and goes on.

    Parameters
    ----------
    message : str
        What went wrong, in one or two lines.
    detail : str, optional
        Supporting text, typically the relevant lines of LilyPond's log.
    """

    error_class = "piece-error"

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def to_dict(self) -> dict[str, str]:
        """Return the error as a JSON-serialisable record."""
        return {"error_class": self.error_class, "message": self.message, "detail": self.detail}


class SourceEncodingError(PieceError):
    """A source file is not valid UTF-8 (nor a declared or recognisable legacy encoding)."""

    error_class = "encoding"


class MissingIncludeError(PieceError):
    r"""An ``\include`` names a file that does not exist."""

    error_class = "missing-include"


class UnsafeIncludeError(PieceError):
    r"""A reference (``\include``, an ``\epsfile`` graphic) leaves the piece's folder tree.

    The piece's folder tree is its Mutopia opus folder (``ftp/<Composer>/<Opus>/``);
    a path that resolves outside it, by an absolute name, ``../`` or a symbolic
    link, is never read: a source we did not write must not pull other files of
    the machine into the build.
    """

    error_class = "unsafe-include"


class ConvertLyError(PieceError):
    """``convert-ly`` crashed or refused to upgrade a file."""

    error_class = "convert-ly"


class LilyPondError(PieceError):
    """LilyPond reported errors and produced no usable output."""

    error_class = "lilypond-error"


class LilyPondSyntaxError(LilyPondError):
    """LilyPond's parser rejected the input."""

    error_class = "syntax"


class SchemeError(LilyPondError):
    """Embedded Scheme code failed (unbound variable, wrong type, removed function)."""

    error_class = "scheme"


class LilyPondCrash(LilyPondError):
    """LilyPond died from a signal or an internal failure (segfault, abort)."""

    error_class = "crash"


class LilyPondTimeout(LilyPondError):
    """LilyPond ran past the per-piece time limit and was killed."""

    error_class = "timeout"


class LilyPondMemoryError(LilyPondError):
    """LilyPond ran out of its per-piece address-space limit (a runaway or hostile source)."""

    error_class = "memory"


class NoOutputError(LilyPondError):
    """LilyPond ran but wrote no PDF or no MIDI (header-only or MIDI-only files)."""

    error_class = "no-output"


class NothingToAlignError(PieceError):
    """The piece rendered but has no noteheads or no performed notes to link."""

    error_class = "nothing-to-align"


class NotUnrollableError(PieceError):
    """Jumps (D.C., D.S., Coda) could not be read reliably into a playing order."""

    error_class = "not-unrollable"


class VerificationError(PieceError):
    """A built-in consistency check on the piece's geometry or alignment failed."""

    error_class = "verification"


class ReadingOrderError(VerificationError):
    """Performed notes go back in the printed music where no repeat or jump explains it.

    The typical cause is a repeat written in some voices only: LilyPond then
    unfolds those voices and plays the others straight on, out of step.
    """


class VoiceOrderError(VerificationError):
    """A voice plays a note right after one it is written after, within one playing.

    Each voice plays its notes in written order except where a repeat or jump
    takes it back; a note out of that order is linked to the wrong notehead
    (as same-pitch grace notes linked the wrong way round would be).
    """


class RepeatsOutOfStepError(PieceError):
    """LilyPond's unfolded MIDI does not follow the score's repeat structure.

    A repeat is written in some voices only: LilyPond unfolds it in those and
    plays the others straight on.  The build then renders the piece with
    ``repeats="timeline"``, which plays every voice by the same repeat
    structure (:mod:`msmd_builder.stages.align.timeline`).
    """

    error_class = "repeats-out-of-step"


class SynthesisError(PieceError):
    """FluidSynth could not render a performance."""

    error_class = "synthesis"


class NotBuiltError(PieceError):
    """A piece lacks an output of an earlier stage (or has a stale one).

    Parameters
    ----------
    piece_id : str
        The piece.
    reason : str
        What is missing, with paths relative to the work directory (so the
        text is the same wherever the work directory lies).
    """

    error_class = "not-built"

    def __init__(self, piece_id: str, reason: str) -> None:
        super().__init__(f"{piece_id} is not built: {reason}")
        self.piece_id = piece_id
        self.reason = reason


class WorkerLostError(PieceError):
    """The process building the piece died (killed, out of memory) or its cluster task was lost."""

    error_class = "worker-lost"


class RecordingError(PieceError):
    """A recording of a piece could not be aligned to it; the piece itself is unaffected."""

    error_class = "recording"


class UnreadableRecordingError(RecordingError):
    """The recording file is missing or no audio decoder reads it."""

    error_class = "recording-unreadable"


class EmptyRecordingError(RecordingError):
    """The recording holds (next to) no audio."""

    error_class = "recording-empty"


class SilentRecordingError(RecordingError):
    """The recording is silent throughout."""

    error_class = "recording-silent"


class RecordingTooLongError(RecordingError):
    """The recording is longer than the aligner accepts."""

    error_class = "recording-too-long"


class RecordingMismatchError(RecordingError):
    """The recording does not match the piece: its best alignment costs too much."""

    error_class = "recording-mismatch"


ERROR_CLASSES: dict[str, type[PieceError]] = {
    cls.error_class: cls
    for cls in (
        PieceError,
        SourceEncodingError,
        MissingIncludeError,
        UnsafeIncludeError,
        ConvertLyError,
        LilyPondError,
        LilyPondSyntaxError,
        SchemeError,
        LilyPondCrash,
        LilyPondTimeout,
        LilyPondMemoryError,
        NoOutputError,
        NothingToAlignError,
        NotUnrollableError,
        VerificationError,
        RepeatsOutOfStepError,
        SynthesisError,
        NotBuiltError,
        WorkerLostError,
        RecordingError,
        UnreadableRecordingError,
        EmptyRecordingError,
        SilentRecordingError,
        RecordingTooLongError,
        RecordingMismatchError,
    )
}
