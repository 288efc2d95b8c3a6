"""Property tests of the time/frame/sample/position conversions."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from msmd_builder.core import units
from msmd_builder.core.errors import ConfigError
from msmd_builder.core.units import (
    FPS,
    FRAME_SIZE,
    HOP_SAMPLES,
    SAMPLE_RATE,
    frame_start_sample,
    frame_to_sec,
    mm_to_pt,
    n_frames,
    pt_to_px,
    px_to_pt,
    sample_to_sec,
    sec_to_frame,
    sec_to_sample,
    sec_to_whole,
    staff_space_to_pt,
    whole_to_sec,
)

frames = st.integers(min_value=0, max_value=10_000_000)
samples = st.integers(min_value=0, max_value=10**9)
seconds = st.floats(min_value=0.0, max_value=36_000.0, allow_nan=False)
positive = st.floats(min_value=1e-3, max_value=1e5, allow_nan=False)
coords = st.floats(min_value=-1e5, max_value=1e5, allow_nan=False)


def test_constants() -> None:
    assert (SAMPLE_RATE, FPS, FRAME_SIZE) == (22050, 20, 2048)
    assert HOP_SAMPLES == 1102.5
    assert units.PT_PER_MM == pytest.approx(72 / 25.4)


# --------------------------------------------------------------------------- frames


@given(frames)
def test_frame_to_sec_round_trips_through_sec_to_frame(i: int) -> None:
    assert sec_to_frame(frame_to_sec(i)) == i


@given(seconds)
def test_sec_to_frame_is_first_frame_at_or_after(t: float) -> None:
    f = int(sec_to_frame(t))
    tol = 1e-9 * max(1.0, t)
    assert frame_to_sec(f) >= t - tol
    assert frame_to_sec(f - 1) < t + tol


@given(seconds, seconds)
def test_sec_to_frame_is_monotonic(a: float, b: float) -> None:
    lo, hi = min(a, b), max(a, b)
    assert sec_to_frame(lo) <= sec_to_frame(hi)


@given(st.lists(seconds, min_size=1, max_size=50))
def test_sec_to_frame_vectorised_equals_msmd_scalar_rule(ts: list[float]) -> None:
    got = sec_to_frame(np.array(ts))
    assert got.dtype == np.int64
    # MSMD's notes_to_onsets: int(np.ceil(n[0] / dt)) with dt = 1.0 / FPS
    assert got.tolist() == [int(np.ceil(t / (1.0 / 20))) for t in ts]


def test_sec_to_frame_examples() -> None:
    assert sec_to_frame(0.0) == 0
    assert sec_to_frame(0.001) == 1
    assert sec_to_frame(0.05) == 1
    assert sec_to_frame(0.0500001) == 2
    assert sec_to_frame([0.0, 1.0, 2.5]).tolist() == [0, 20, 50]


@given(frames)
def test_frame_start_sample_is_floor_of_i_times_hop(i: int) -> None:
    # madmom: int(index * hop_size) with origin='future'
    assert frame_start_sample(i) == int(i * 1102.5)
    assert frame_start_sample(i) == math.floor(i * SAMPLE_RATE / FPS)


@given(frames)
def test_frame_starts_advance_by_1102_or_1103(i: int) -> None:
    step = frame_start_sample(i + 1) - frame_start_sample(i)
    assert step in (1102, 1103)
    assert frame_start_sample(i + 2) - frame_start_sample(i) == 2205


@given(samples)
def test_n_frames_consistent_with_frame_starts(n: int) -> None:
    count = int(n_frames(n))
    assert count == math.ceil(n / 1102.5)  # madmom's end='normal'
    # every counted frame starts inside the signal, the next one would not
    if count > 0:
        assert frame_start_sample(count - 1) < n
    assert frame_start_sample(count) >= n


@given(samples, samples)
def test_n_frames_is_monotonic(a: int, b: int) -> None:
    assert n_frames(min(a, b)) <= n_frames(max(a, b))


def test_n_frames_vectorised() -> None:
    got = n_frames(np.array([0, 1, 1102, 1103, 2205, 2206]))
    assert got.dtype == np.int64
    assert got.tolist() == [0, 1, 1, 2, 2, 3]


def test_frame_start_sample_accepts_integral_floats_only() -> None:
    assert frame_start_sample(np.array([2.0, 3.0])).tolist() == [2205, 3307]
    with pytest.raises(ConfigError, match="1.5"):
        frame_start_sample(1.5)
    with pytest.raises(ConfigError, match="-1"):
        n_frames(-1)
    with pytest.raises(ConfigError, match=r"frame must be integer, got dtype <U1 \('a'\)"):
        frame_start_sample("a")


# --------------------------------------------------------------------------- samples


@given(seconds)
def test_sec_sample_round_trip(t: float) -> None:
    assert sample_to_sec(sec_to_sample(t)) == pytest.approx(t, rel=1e-12, abs=1e-12)


def test_sec_to_sample_examples() -> None:
    assert sec_to_sample(1.0) == 22050.0
    assert sec_to_sample(frame_to_sec(1)) == HOP_SAMPLES


# --------------------------------------------------------------------------- positions


@given(coords, positive, positive)
def test_pt_px_round_trip(x: float, page_width_pt: float, image_width_px: float) -> None:
    kw = {"page_width_pt": page_width_pt, "image_width_px": image_width_px}
    assert px_to_pt(pt_to_px(x, **kw), **kw) == pytest.approx(x, rel=1e-9, abs=1e-9)


@given(coords, coords, positive, positive)
def test_pt_to_px_is_monotonic(a: float, b: float, w_pt: float, w_px: float) -> None:
    kw = {"page_width_pt": w_pt, "image_width_px": w_px}
    lo, hi = min(a, b), max(a, b)
    assert pt_to_px(lo, **kw) <= pt_to_px(hi, **kw)


def test_pt_to_px_examples() -> None:
    # MSMD: A4 page (595.28 pt wide) resized to 835 px wide.
    kw = {"page_width_pt": 595.28, "image_width_px": 835}
    assert pt_to_px(595.28, **kw) == pytest.approx(835)
    assert pt_to_px(0.0, **kw) == 0.0
    np.testing.assert_allclose(pt_to_px([0.0, 297.64], **kw), [0.0, 417.5])


def test_staff_space_and_mm_to_pt() -> None:
    assert mm_to_pt(25.4) == pytest.approx(72.0)
    # default 20 pt staff: staff space 1.75 mm = 4.96 pt
    assert staff_space_to_pt(1.0, output_scale=1.75) == pytest.approx(1.75 * 72 / 25.4)
    assert staff_space_to_pt(4.0, output_scale=1.75) == pytest.approx(4 * 4.960629921)
    np.testing.assert_allclose(staff_space_to_pt([1.0, 2.0], output_scale=25.4 / 72), [1.0, 2.0])


@given(coords, positive)
def test_staff_space_to_pt_is_linear(x: float, scale: float) -> None:
    assert staff_space_to_pt(x, output_scale=scale) == pytest.approx(
        x * staff_space_to_pt(1.0, output_scale=scale), rel=1e-12, abs=1e-12
    )


# --------------------------------------------------------------------------- musical time


def test_whole_to_sec_examples() -> None:
    assert whole_to_sec(1.0, quarter_bpm=60) == 4.0
    assert whole_to_sec(0.25, quarter_bpm=120) == 0.5
    np.testing.assert_allclose(whole_to_sec([0.5, 1.5], quarter_bpm=60), [2.0, 6.0])


@given(st.floats(min_value=0, max_value=1e4, allow_nan=False), positive)
def test_whole_sec_round_trip(moment: float, bpm: float) -> None:
    back = sec_to_whole(whole_to_sec(moment, quarter_bpm=bpm), quarter_bpm=bpm)
    assert back == pytest.approx(moment, rel=1e-12, abs=1e-12)


@given(
    st.floats(min_value=0, max_value=1e4, allow_nan=False),
    st.floats(min_value=0, max_value=1e4, allow_nan=False),
    positive,
)
def test_whole_to_sec_is_monotonic(a: float, b: float, bpm: float) -> None:
    lo, hi = min(a, b), max(a, b)
    assert whole_to_sec(lo, quarter_bpm=bpm) <= whole_to_sec(hi, quarter_bpm=bpm)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: pt_to_px(1.0, page_width_pt=0.0, image_width_px=835), "page_width_pt"),
        (lambda: px_to_pt(1.0, page_width_pt=595.0, image_width_px=-1), "image_width_px"),
        (lambda: staff_space_to_pt(1.0, output_scale=float("nan")), "output_scale"),
        (lambda: whole_to_sec(1.0, quarter_bpm=0), "quarter_bpm"),
        (lambda: sec_to_whole(1.0, quarter_bpm="fast"), "fast"),
        (lambda: sec_to_frame(float("inf")), "inf"),
        (lambda: sec_to_frame("x"), "x"),
    ],
)
def test_bad_parameters_raise_config_error(call: Callable[[], object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        call()
