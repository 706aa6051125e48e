"""The cycle report's own arithmetic: the by-segment lift and its interval."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from campaign_loop.cycle_report import _with_interval
from ml.ab import two_proportion_test


def test_segment_lift_has_the_marts_interval_even_without_conversions() -> None:
    segments = pd.DataFrame({
        "segment": ["champions", "lost", "prospect"],
        "n_treatment": [40, 3, 5], "n_control": [10, 2, 0],
        "converted_treatment": [12, 0, 1], "converted_control": [1, 0, 0],
    })
    out = _with_interval(segments)
    champions = two_proportion_test(1, 10, 12, 40, ci="newcombe")
    assert (out.loc[0, "lift"], out.loc[0, "ci_low"], out.loc[0, "ci_high"]) == pytest.approx(
        (0.2, champions.ci_low, champions.ci_high))
    # No conversion in either arm: a normal interval would be [0, 0], which claims a certainty 5 people cannot give.
    assert out.loc[1, "lift"] == 0.0 and out.loc[1, "ci_low"] < -0.5 and out.loc[1, "ci_high"] > 0.5
    assert math.isnan(out.loc[2, "lift"])  # no control arm, no lift


def test_cells_read_like_the_terminal_tables_and_are_escaped() -> None:
    from campaign_loop.cycle_report import _cell
    from campaign_loop.report import format_cell

    assert [format_cell(v) for v in (None, math.nan, True, 12345, 0.012345, 1234.5, "x")] == [
        "", "", "yes", "12,345", "0.01235", "1,234.50", "x"]
    assert _cell("<b>pct10</b>") == "&lt;b&gt;pct10&lt;/b&gt;" and _cell(0.5) == "0.5"
