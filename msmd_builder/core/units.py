"""Every time, frame, sample and position conversion of msmd-builder, in one place.

The stages exchange times in seconds (``*_sec``), musical time in whole notes
(``*_whole``, LilyPond's moments), spectrogram frames (``*_frame``), audio
samples (``*_sample``), PDF points (``*_pt``, 1/72 inch) and page-image pixels
(``*_px``).  Converting between them in one module keeps MSMD's rounding rules
(which decide which spectrogram frame a note onset lands in) consistent across
the alignment, the performances and the shards.

All functions accept Python scalars or array-likes and work element-wise; a
scalar in gives a numpy scalar out, an array in gives an array of the same
shape out.  Integer results are ``int64``, real ones ``float64``.

The audio constants are MSMD's: 22,050 Hz mono audio cut into frames of 2,048
samples every 22050 / 20 = 1102.5 samples (20 frames per second).  Frame ``i``
*starts* at sample ``floor(i * 1102.5)`` and extends 2,048 samples to the right
(madmom's ``origin='future'``), so the frame's time stamp ``i / 20`` s is its
left edge, not its centre.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from msmd_builder.core.errors import ConfigError

__all__ = [
    "SAMPLE_RATE",
    "FPS",
    "HOP_SAMPLES",
    "FRAME_SIZE",
    "PT_PER_INCH",
    "MM_PER_INCH",
    "PT_PER_MM",
    "sec_to_frame",
    "frame_to_sec",
    "sec_to_sample",
    "sample_to_sec",
    "frame_start_sample",
    "n_frames",
    "pt_to_px",
    "px_to_pt",
    "mm_to_pt",
    "staff_space_to_pt",
    "whole_to_sec",
    "sec_to_whole",
]

#: Audio sample rate of MSMD's spectrograms, in Hz.
SAMPLE_RATE: int = 22050
#: Spectrogram frames per second.
FPS: int = 20
#: Hop between consecutive frame starts, in samples (22050 / 20, not an integer).
HOP_SAMPLES: float = SAMPLE_RATE / FPS
#: Length of one analysis frame (and of its FFT), in samples.
FRAME_SIZE: int = 2048

#: PDF points per inch (PostScript/PDF definition).
PT_PER_INCH: float = 72.0
#: Millimetres per inch.
MM_PER_INCH: float = 25.4
#: PDF points per millimetre (72 / 25.4).
PT_PER_MM: float = PT_PER_INCH / MM_PER_INCH

# The hop 1102.5 is the ratio SAMPLE_RATE / FPS; frame/sample arithmetic uses that
# exact integer ratio so no float rounding creeps in.
_HOP_NUM: int = SAMPLE_RATE
_HOP_DEN: int = FPS

FloatOut = npt.NDArray[np.float64] | np.float64
IntOut = npt.NDArray[np.int64] | np.int64


def _as_float(x: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    """Return ``x`` as a float64 array, rejecting non-numeric input."""
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be numeric, got {x!r}") from exc


def _as_int(x: npt.ArrayLike, name: str) -> npt.NDArray[np.int64]:
    """Return ``x`` as an int64 array; floats are accepted only if integral."""
    arr = np.asarray(x)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind != "f":
        raise ConfigError(f"{name} must be integer, got dtype {arr.dtype} ({x!r})")
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
        raise ConfigError(f"{name} must hold whole numbers, got {x!r}")
    return arr.astype(np.int64)


def _positive(value: Any, name: str) -> float:
    """Return ``value`` as a finite positive float or raise :class:`ConfigError`."""
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a positive number, got {value!r}") from exc
    if not math.isfinite(v) or v <= 0.0:
        raise ConfigError(f"{name} must be a positive finite number, got {value!r}")
    return v


def sec_to_frame(t_sec: npt.ArrayLike) -> IntOut:
    """Return the spectrogram frame in which an event at ``t_sec`` is annotated.

    This is MSMD's onset rule, ``int(np.ceil(t / (1.0 / FPS)))`` (``notes_to_onsets``
    in its ``midi_parser.py``): an onset belongs to the first frame whose time
    stamp is at or after it.  The expression is reproduced literally (division by
    the frame period rather than multiplication by 20) because the two can differ
    by one frame for times within a rounding error of a frame boundary.

    Parameters
    ----------
    t_sec : float or array_like of float
        Times in seconds.

    Returns
    -------
    onset_frame : np.int64 or np.ndarray [dtype=int64]
        Frame indices, same shape as ``t_sec``.
    """
    t = _as_float(t_sec, "t_sec")
    if not np.all(np.isfinite(t)):
        raise ConfigError(f"t_sec must be finite, got {t_sec!r}")
    return np.ceil(t / (1.0 / FPS)).astype(np.int64)


def frame_to_sec(frame: npt.ArrayLike) -> FloatOut:
    """Return the time stamp of frame ``frame``, in seconds.

    The time stamp is the frame's left edge (the time of its first sample,
    ``frame_start_sample(frame) / SAMPLE_RATE`` up to the half-sample rounding of
    the hop), since MSMD's frames look ahead of their time stamp.  For integer
    frames ``sec_to_frame(frame_to_sec(i)) == i`` exactly.

    Parameters
    ----------
    frame : int or array_like
        Frame indices (fractional values are allowed and scale linearly).

    Returns
    -------
    t_sec : np.float64 or np.ndarray [dtype=float64]
        ``frame / FPS``.
    """
    return _as_float(frame, "frame") / FPS


def sec_to_sample(t_sec: npt.ArrayLike) -> FloatOut:
    """Return the (fractional) sample position of ``t_sec`` at 22,050 Hz.

    No rounding is applied: callers cutting audio choose ``floor``, ``ceil`` or
    ``round`` for their purpose.

    Parameters
    ----------
    t_sec : float or array_like of float
        Times in seconds.

    Returns
    -------
    position_sample : np.float64 or np.ndarray [dtype=float64]
        ``t_sec * SAMPLE_RATE``.
    """
    return _as_float(t_sec, "t_sec") * SAMPLE_RATE


def sample_to_sec(position_sample: npt.ArrayLike) -> FloatOut:
    """Return the time of a sample position at 22,050 Hz, in seconds.

    Parameters
    ----------
    position_sample : float or array_like
        Sample positions (integer or fractional).

    Returns
    -------
    t_sec : np.float64 or np.ndarray [dtype=float64]
        ``position_sample / SAMPLE_RATE``.
    """
    return _as_float(position_sample, "position_sample") / SAMPLE_RATE


def frame_start_sample(frame: npt.ArrayLike) -> IntOut:
    """Return the first sample of spectrogram frame ``frame``.

    Frame ``i`` covers samples ``[floor(i * 1102.5), floor(i * 1102.5) + 2048)``
    (madmom's ``int(index * hop_size)`` with ``origin='future'``).  Computed in
    exact integer arithmetic as ``(i * 22050) // 20``.  Negative frames (before
    the signal) follow the same floor rule.

    Parameters
    ----------
    frame : int or array_like of int
        Frame indices.

    Returns
    -------
    start_sample : np.int64 or np.ndarray [dtype=int64]
        Index of the frame's first sample.
    """
    i = _as_int(frame, "frame")
    return (i * _HOP_NUM) // _HOP_DEN


def n_frames(n_samples: npt.ArrayLike) -> IntOut:
    """Return how many spectrogram frames MSMD computes for ``n_samples`` samples.

    ``ceil(n_samples / 1102.5)`` (madmom's ``end='normal'``: one frame per hop
    whose start lies inside the signal), in exact integer arithmetic.  The last
    frames run past the end of the audio and are zero-padded.

    Parameters
    ----------
    n_samples : int or array_like of int
        Signal lengths in samples, ``>= 0``.

    Returns
    -------
    n_frames : np.int64 or np.ndarray [dtype=int64]
        Number of frames; frame ``n_frames - 1`` is the last whose first sample
        is ``< n_samples``.
    """
    n = _as_int(n_samples, "n_samples")
    if np.any(n < 0):
        raise ConfigError(f"n_samples must be >= 0, got {n_samples!r}")
    return -((-n * _HOP_DEN) // _HOP_NUM)


def pt_to_px(x_pt: npt.ArrayLike, *, page_width_pt: float, image_width_px: float) -> FloatOut:
    """Convert PDF points to page-image pixels.

    The page image is the whole PDF page scaled uniformly to ``image_width_px``
    (MSMD renders at 150 dpi and resizes to 835 px wide), so one factor serves
    both axes.

    Parameters
    ----------
    x_pt : float or array_like
        Coordinates or lengths in PDF points (origin top-left of the page).
    page_width_pt : float
        Width of the PDF page in points (595.28 for A4, 612 for US letter).
    image_width_px : float
        Width of the page image in pixels.

    Returns
    -------
    x_px : np.float64 or np.ndarray [dtype=float64]
        ``x_pt * image_width_px / page_width_pt``, unrounded.
    """
    w_pt = _positive(page_width_pt, "page_width_pt")
    w_px = _positive(image_width_px, "image_width_px")
    return _as_float(x_pt, "x_pt") * (w_px / w_pt)


def px_to_pt(x_px: npt.ArrayLike, *, page_width_pt: float, image_width_px: float) -> FloatOut:
    """Convert page-image pixels to PDF points (inverse of :func:`pt_to_px`).

    Parameters
    ----------
    x_px : float or array_like
        Coordinates or lengths in page-image pixels.
    page_width_pt : float
        Width of the PDF page in points.
    image_width_px : float
        Width of the page image in pixels.

    Returns
    -------
    x_pt : np.float64 or np.ndarray [dtype=float64]
        ``x_px * page_width_pt / image_width_px``.
    """
    w_pt = _positive(page_width_pt, "page_width_pt")
    w_px = _positive(image_width_px, "image_width_px")
    return _as_float(x_px, "x_px") * (w_pt / w_px)


def mm_to_pt(x_mm: npt.ArrayLike) -> FloatOut:
    """Convert millimetres to PDF points (1 mm = 72 / 25.4 pt).

    Parameters
    ----------
    x_mm : float or array_like
        Lengths in millimetres.

    Returns
    -------
    x_pt : np.float64 or np.ndarray [dtype=float64]
        Lengths in points.
    """
    return _as_float(x_mm, "x_mm") * PT_PER_MM


def staff_space_to_pt(x_staff_space: npt.ArrayLike, *, output_scale: float) -> FloatOut:
    """Convert LilyPond staff spaces to PDF points.

    LilyPond reports layout positions in staff spaces; its ``output-scale`` (the
    staff space in millimetres, 1.75 mm for the default 20 pt staff) turns them
    into page units.

    Parameters
    ----------
    x_staff_space : float or array_like
        Lengths or coordinates in staff spaces.
    output_scale : float
        LilyPond's ``output-scale``, millimetres per staff space (``> 0``).

    Returns
    -------
    x_pt : np.float64 or np.ndarray [dtype=float64]
        ``x_staff_space * output_scale * 72 / 25.4``.
    """
    scale_mm = _positive(output_scale, "output_scale")
    return _as_float(x_staff_space, "x_staff_space") * (scale_mm * PT_PER_MM)


def whole_to_sec(moment_whole: npt.ArrayLike, *, quarter_bpm: float) -> FloatOut:
    """Convert musical time in whole notes to seconds at a constant tempo.

    Parameters
    ----------
    moment_whole : float or array_like
        Musical time (LilyPond moments), in whole notes.
    quarter_bpm : float
        Tempo in quarter notes per minute (``> 0``).

    Returns
    -------
    t_sec : np.float64 or np.ndarray [dtype=float64]
        ``moment_whole * 4 * 60 / quarter_bpm``.
    """
    bpm = _positive(quarter_bpm, "quarter_bpm")
    return _as_float(moment_whole, "moment_whole") * (240.0 / bpm)


def sec_to_whole(t_sec: npt.ArrayLike, *, quarter_bpm: float) -> FloatOut:
    """Convert seconds to whole notes at a constant tempo (inverse of :func:`whole_to_sec`).

    Parameters
    ----------
    t_sec : float or array_like
        Times in seconds.
    quarter_bpm : float
        Tempo in quarter notes per minute (``> 0``).

    Returns
    -------
    moment_whole : np.float64 or np.ndarray [dtype=float64]
        ``t_sec * quarter_bpm / 240``.
    """
    bpm = _positive(quarter_bpm, "quarter_bpm")
    return _as_float(t_sec, "t_sec") * (bpm / 240.0)
