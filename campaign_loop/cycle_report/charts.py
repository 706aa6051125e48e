"""The cycle report's charts: matplotlib figures inlined as base64 PNG (no CDN, no JavaScript)."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

from campaign_loop.cycle_report.data import MODELS, ReportData
from ml.registry import GATE_RULES


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")

def chart_kpis(data: ReportData) -> str | None:
    frame = data.kpi_daily
    if frame is None or not len(frame):
        return None
    import matplotlib.pyplot as plt
    import pandas as pd

    frame = frame.copy()
    frame["order_date"] = pd.to_datetime(frame["order_date"])
    metrics = [("revenue", "Revenue"), ("orders", "Orders"), ("active_customers", "Active customers"),
               ("average_order_value", "Average order value")]
    fig, axes = plt.subplots(2, 2, figsize=(11, 5.5), sharex=True)
    start, end = pd.Timestamp(data.start), pd.Timestamp(data.end)
    for ax, (column, title) in zip(axes.flat, metrics, strict=True):
        series = frame.set_index("order_date")[column].astype(float)
        ax.plot(series.index, series.values, color="#9aa5b1", lw=0.8, label="daily")
        ax.plot(series.index, series.rolling(7, min_periods=1).mean().values, color="#1f6feb", lw=1.8,
                label="7-day mean")
        ax.axvspan(start, end, color="#f2cc60", alpha=0.3, label="this cycle")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8, loc="upper left")
    fig.autofmt_xdate()
    fig.suptitle(f"KPI trends up to the end of cycle {data.cycle_id}", fontsize=11)
    return _png(fig)


def _forest(labels: Sequence[str], lifts: Sequence[float], lows: Sequence[float], highs: Sequence[float],
            title: str) -> str:
    import matplotlib.pyplot as plt
    import numpy as np

    y = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(labels) + 1.3))
    lifts_a, lows_a, highs_a = (np.asarray(v, dtype=float) for v in (lifts, lows, highs))
    err = np.vstack([np.nan_to_num(lifts_a - lows_a), np.nan_to_num(highs_a - lifts_a)])
    colors = ["#1a7f37" if lo > 0 else "#cf222e" if hi < 0 else "#57606a" for lo, hi in zip(lows_a, highs_a, strict=True)]
    for i, color in enumerate(colors):
        ax.errorbar(lifts_a[i], y[i], xerr=err[:, i:i + 1], fmt="none", ecolor=color, elinewidth=1.5, capsize=3)
    ax.scatter(lifts_a, y, c=colors, zorder=3)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:+.0%}"))
    ax.set_xlabel("conversion lift, treatment - holdout (95% interval)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def chart_arms(data: ReportData) -> str | None:
    frame = data.arms
    if frame is None or not len(frame) or frame["conversion_lift"].isna().all():
        return None
    frame = frame.dropna(subset=["conversion_lift"])
    labels = [c.removeprefix(f"{data.cycle_id}-") + ("" if a == "treatment" else f" {a}") + f" (n={int(n)})"
              for c, a, n in zip(frame["campaign_id"], frame["arm"], frame["assigned"], strict=True)]
    return _forest(labels, frame["conversion_lift"], frame["conversion_lift_ci_low"].fillna(frame["conversion_lift"]),
                   frame["conversion_lift_ci_high"].fillna(frame["conversion_lift"]),
                   f"Lift by action (offer x channel), campaigns of cycle {data.cycle_id}")


def chart_segments(data: ReportData) -> str | None:
    frame = data.segments
    if frame is None or not len(frame) or frame["lift"].isna().all():
        return None
    frame = frame.dropna(subset=["lift"])
    labels = [f"{s} (n={int(t)}+{int(c)})" for s, t, c in zip(frame["segment"], frame["n_treatment"], frame["n_control"], strict=True)]
    return _forest(labels, frame["lift"], frame["ci_low"], frame["ci_high"],
                   f"Lift by RFM segment, campaigns of cycle {data.cycle_id}")


def chart_models(data: ReportData) -> str | None:
    runs = data.model_runs
    if not runs:
        return None
    import matplotlib.pyplot as plt

    models = [m for m in MODELS if any(r["model"] == m for r in runs)]
    fig, axes = plt.subplots(1, len(models), figsize=(3.4 * len(models) + 0.5, 3.2), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        mine = [r for r in runs if r["model"] == model]
        for metric in GATE_RULES.get(model, {}):
            points = [(r["cycle_id"], r["metrics"][metric]) for r in mine if metric in r["metrics"]]
            if not points:
                continue
            xs, ys = zip(*sorted(points), strict=True)
            ax.plot(xs, ys, marker="o", label=metric)
            for x, y, r in zip(xs, ys, sorted(mine, key=lambda r: r["cycle_id"]), strict=False):
                if r.get("decision") == "promote":
                    ax.scatter([x], [y], s=90, facecolors="none", edgecolors="#1a7f37", zorder=3)
        if data.next_cycle_id in [r["cycle_id"] for r in mine]:
            ax.axvline(data.next_cycle_id, color="#f2cc60", lw=6, alpha=0.4)
        ax.set_title(model, fontsize=10)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle("Model metrics by cycle trained for (green ring: promoted by the gate)", fontsize=10)
    fig.tight_layout()
    return _png(fig)
