"""What the conversions promise beyond their values: result dtypes, errors naming the argument.

Found by mutation testing (docs/testing.md): the property tests of
``test_units.py`` compare values, which an integer and a float of the same
value pass alike, and match errors by the bad value, not by the argument.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from msmd_builder.core import units
from msmd_builder.core.errors import ConfigError


@pytest.mark.parametrize("function", [units.frame_start_sample, units.n_frames])
def test_integral_floats_give_int64(function: Callable) -> None:
    assert function(np.array([2.0, 3.0])).dtype == np.int64
    assert function(np.array([2, 3], dtype=np.int32)).dtype == np.int64
    assert function(4.0).dtype == np.int64


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda bad: units.sec_to_frame(bad), "t_sec"),
        (lambda bad: units.frame_to_sec(bad), "frame"),
        (lambda bad: units.sec_to_sample(bad), "t_sec"),
        (lambda bad: units.sample_to_sec(bad), "position_sample"),
        (lambda bad: units.mm_to_pt(bad), "x_mm"),
        (lambda bad: units.pt_to_px(bad, page_width_pt=595, image_width_px=835), "x_pt"),
        (lambda bad: units.px_to_pt(bad, page_width_pt=595, image_width_px=835), "x_px"),
        (lambda bad: units.staff_space_to_pt(bad, output_scale=1.75), "x_staff_space"),
        (lambda bad: units.whole_to_sec(bad, quarter_bpm=60), "moment_whole"),
        (lambda bad: units.sec_to_whole(bad, quarter_bpm=60), "t_sec"),
    ],
)
def test_a_value_that_is_not_a_number_is_named(call: Callable, argument: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{argument} must be numeric, got 'two'$"):
        call("two")


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda bad: units.frame_start_sample(bad), "frame"),
        (lambda bad: units.n_frames(bad), "n_samples"),
    ],
)
def test_a_count_that_is_not_whole_is_named(call: Callable, argument: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{argument} must hold whole numbers, got 2.5$"):
        call(2.5)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda bad: units.pt_to_px(1.0, page_width_pt=bad, image_width_px=835), "page_width_pt"),
        (lambda bad: units.pt_to_px(1.0, page_width_pt=595, image_width_px=bad), "image_width_px"),
        (lambda bad: units.px_to_pt(1.0, page_width_pt=bad, image_width_px=835), "page_width_pt"),
        (lambda bad: units.px_to_pt(1.0, page_width_pt=595, image_width_px=bad), "image_width_px"),
        (lambda bad: units.staff_space_to_pt(1.0, output_scale=bad), "output_scale"),
        (lambda bad: units.whole_to_sec(1.0, quarter_bpm=bad), "quarter_bpm"),
        (lambda bad: units.sec_to_whole(1.0, quarter_bpm=bad), "quarter_bpm"),
    ],
)
def test_a_scale_that_is_not_positive_is_named(call: Callable, argument: str) -> None:
    with pytest.raises(
        ConfigError, match=rf"^{argument} must be a positive finite number, got -1$"
    ):
        call(-1)
    with pytest.raises(ConfigError, match=rf"^{argument} must be a positive number, got 'x'$"):
        call("x")
