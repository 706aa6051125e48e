"""A/B calibration (issue 23): do the platform's tests reject 5 % of A/A campaigns, and do its 95 % intervals
cover the true effect 95 % of the time, for every design and metric, with and without CUPED?

Each simulated campaign draws members with a weekly order rate lambda ~ Gamma(0.3, 1/3) (a tenth of an
order a week, most members buying nothing, a few often), a 12-week pre-period of orders from the same
rate (CUPED's covariate), and outcome orders ~ Poisson(lambda (1 + e)) of log-normal value x (1 + v); the
true effects follow in closed form (conversion: 1 - (1 + (1 + e) theta)^-k). A/A campaigns have e = v = 0;
A/B ones give the first treated arm e = 0.15, v = 0.05 and any other arm none. Every campaign is analysed
by ``ml.ab.analyze`` with the metrics of ``campaign_loop.lift.METRICS`` (conversion, revenue, revenue per
order), corrected per metric over the arms, Newcombe for conversion: what ``measure`` and
``kpi_campaign_lift`` run. Overlapping campaigns go through ``measure``'s own de-duplication
(``_measured_units``).

* FPR: share of A/A campaigns with an adjusted p < 0.05 on the metric (any arm: family-wise), by Holm's and
  by Dunnett's correction on the same analyses (they differ only where two or more arms share the control).
* Coverage: share of A/B comparisons whose 95 % interval holds the true effect; mean interval width. Where
  two or more arms share the control, also the share of A/B campaigns whose simultaneous intervals
  (``ci_*_simultaneous``) hold every arm's true effect at once (family-wise, target 95 % as well).
* Peeking: a 2-arm campaign whose members arrive over 7 days, analysed every day: the share of campaigns
  whose interval held the truth at *all* 7 looks, for the fixed-n interval and the always-valid one.

    .venv/bin/python bench/ab_calibration.py [--runs 2000] [--seed 0] [--designs 2arms,shared] [--jobs 1] [--no-write]

``--designs`` picks designs by key (``DESIGNS``), e.g. to rerun a miss with more campaigns; ``--peeking-runs 0``
leaves the peeking check out; ``--jobs`` runs designs in parallel processes, each on its own random stream.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import RESULTS, machine, write_section  # noqa: E402
from campaign_loop.lift import METRICS  # noqa: E402
from campaign_loop.pipeline import _measured_units  # noqa: E402
from ml.ab import AnalysisOptions, Comparison, Correction, analyze  # noqa: E402

HEADING = "## A/B calibration: false positives, coverage, CUPED, peeking (issue 23)"
K, THETA, PRE_WEEKS, MU = 0.3, 1 / 3, 12, 3.5
EFFECT = (0.15, 0.05)  # (order rate, order value) of the first treated arm in A/B campaigns
ALPHA = 0.05
CALIBRATED = ("converted", "revenue", "revenue_per_order")
METRIC_SPECS = [m for m in METRICS if m.name in CALIBRATED]


@dataclass(frozen=True)
class Design:
    key: str  # what --designs selects it by
    name: str
    arms: dict[str, int]  # arm -> members (the shared control once)
    sigma: float = 1.0  # log-normal sigma of an order's value: 2.0 is heavy-tailed
    campaigns: tuple[tuple[str, ...], ...] = ()  # overlapping: each campaign's treated arms, sharing the control
    count_control_twice: bool = False  # the bug issue 23 fixed, for contrast
    treated: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "treated", tuple(a for a in self.arms if a != "control"))


DESIGNS = (
    Design("2arms", "2 arms 1:1, 2,000 each", {"treatment": 2000, "control": 2000}),
    Design("3arms", "3 arms 1:1:1, 2,000 each", {"variant_a": 2000, "variant_b": 2000, "control": 2000}),
    Design("2to1", "2:1, 2,000 + 1,000", {"treatment": 2000, "control": 1000}),
    Design("shared", "2 campaigns sharing a control", {"c1:treatment": 2000, "c2:treatment": 2000, "control": 2000},
           campaigns=(("c1:treatment",), ("c2:treatment",))),
    Design("shared_twice", "same, control counted twice (before #23)", {"c1:treatment": 2000, "c2:treatment": 2000, "control": 2000},
           campaigns=(("c1:treatment",), ("c2:treatment",)), count_control_twice=True),
    Design("heavy500", "heavy-tailed revenue, 500 each", {"treatment": 500, "control": 500}, sigma=2.0),
    Design("heavy5000", "heavy-tailed revenue, 5,000 each", {"treatment": 5000, "control": 5000}, sigma=2.0),
)


def true_effects(design: Design, effects: dict[str, tuple[float, float]]) -> dict[tuple[str, str], float]:
    """(metric, arm) -> the true difference from the control, in closed form."""
    value = math.exp(MU + design.sigma**2 / 2)
    out = {}
    for arm in design.treated:
        e, v = effects.get(arm, (0.0, 0.0))
        out[("converted", arm)] = (1 + THETA) ** -K - (1 + (1 + e) * THETA) ** -K
        out[("revenue", arm)] = K * THETA * value * ((1 + e) * (1 + v) - 1)
        out[("revenue_per_order", arm)] = value * v
    return out


def _order_value(rng: np.random.Generator, orders: np.ndarray, sigma: float, scale: np.ndarray) -> np.ndarray:
    """Each member's total of ``orders`` log-normal order values (one draw per order)."""
    owner = np.repeat(np.arange(len(orders)), orders)
    values = rng.lognormal(MU, sigma, owner.size) * scale[owner]
    return np.bincount(owner, weights=values, minlength=len(orders))


def simulate(rng: np.random.Generator, design: Design, effects: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """One row per member: arm (``variant``), day of arrival, outcomes and their pre-period."""
    arms = np.concatenate([np.full(n, arm, dtype=object) for arm, n in design.arms.items()])
    n = len(arms)
    rate = rng.gamma(K, THETA, n)
    e = np.array([effects.get(a, (0.0, 0.0))[0] for a in arms])
    v = np.array([effects.get(a, (0.0, 0.0))[1] for a in arms])
    pre_orders = rng.poisson(PRE_WEEKS * rate)
    orders = rng.poisson(rate * (1 + e))
    revenue = _order_value(rng, orders, design.sigma, 1 + v)
    return pd.DataFrame({
        "variant": arms, "member_id": np.arange(n), "day": rng.integers(0, 7, n),
        "converted": (orders > 0).astype(float), "revenue": revenue, "orders": orders.astype(float),
        "pre_converted": (pre_orders > 0).astype(float),
        "pre_revenue": _order_value(rng, pre_orders, design.sigma, np.ones(n)),
    })


def measured(design: Design, units: pd.DataFrame) -> pd.DataFrame:
    """The units as the platform measures them: overlapping campaigns through measure's de-duplication."""
    if not design.campaigns:
        return units
    rows = []
    for number, treated in enumerate(design.campaigns, start=1):
        members = units[units["variant"].isin([*treated, "control"])]
        arm = members["variant"].where(members["variant"] == "control", "treatment")
        rows.append(members.assign(campaign_id=f"c{number}", arm=arm))
    sends = pd.concat(rows, ignore_index=True)
    if design.count_control_twice:
        # Before issue 23: each campaign's rows as they are, the shared holdout once per campaign.
        return sends.assign(variant=sends["arm"].where(sends["arm"] == "control", sends["campaign_id"] + ":treatment"))
    units, _ = _measured_units(sends.drop(columns="variant"))
    return units


def analyse(units: pd.DataFrame, cuped: bool, planned: dict[str, int] | None = None,
            correction: Correction = "dunnett") -> list[Comparison]:
    # Dunnett's run gives Holm's p-values too (p_value_holm), so both corrections score the same analyses.
    options = AnalysisOptions(family="metric", proportion_ci="newcombe", cuped=cuped, planned=planned,
                              correction=correction)
    return list(analyze(units, METRIC_SPECS, options).comparisons)


def expected_cuped_ratio(units: pd.DataFrame, metric: str) -> float:
    """sqrt(1 - rho^2), rho the within-arm correlation of the metric with its pre-period: CUPED's width ratio
    (Deng et al. 2013, the variance falls by rho^2)."""
    covariate = next(m.covariate for m in METRIC_SPECS if m.name == metric)
    centred = units.groupby("variant")[[metric, covariate]].transform(lambda c: c - c.mean())
    rho = np.corrcoef(centred[metric], centred[covariate])[0, 1]
    return math.sqrt(1 - rho**2)


def calibrate(design: Design, runs: int, rng: np.random.Generator) -> pd.DataFrame:
    """Per metric and CUPED on/off: FPR over A/A runs, coverage and mean width over A/B runs."""
    effects = {design.treated[0]: EFFECT}
    truth = true_effects(design, effects)
    records = []
    expected: dict[str, list[float]] = {"converted": [], "revenue": []}
    for kind, arm_effects in (("aa", {}), ("ab", effects)):
        for run in range(runs):
            units = measured(design, simulate(rng, design, arm_effects))
            if kind == "aa" and run < 100:
                for metric, ratios in expected.items():
                    ratios.append(expected_cuped_ratio(units, metric))
            for cuped in (False, True):
                # The intervals do not depend on the correction: A/B campaigns skip Dunnett's integrals.
                comparisons = analyse(units, cuped, correction="dunnett" if kind == "aa" else "holm")
                if kind == "aa":
                    for metric in CALIBRATED:
                        mine = [c for c in comparisons if c.metric == metric]
                        records.append({"metric": metric, "cuped": cuped, "kind": kind,
                                        "rejected": float(any(c.p_value_holm < ALPHA for c in mine)),
                                        "rejected_dunnett": float(any(c.p_value_adjusted < ALPHA for c in mine))})
                    continue
                for c in comparisons:
                    true = truth[(c.metric, c.variant)]
                    records.append({"metric": c.metric, "cuped": cuped, "kind": kind,
                                    "covered": float(c.ci_low <= true <= c.ci_high), "width": c.ci_high - c.ci_low,
                                    "cuped_applied": float(c.cuped)})
                if len(design.treated) > 1:
                    for metric in CALIBRATED:
                        held = all(c.ci_low_simultaneous <= truth[(metric, c.variant)] <= c.ci_high_simultaneous
                                   for c in comparisons if c.metric == metric)
                        records.append({"metric": metric, "cuped": cuped, "kind": "family", "covered": float(held)})
    frame = pd.DataFrame(records)  # numbers, not numpy bools: pandas averages object columns of bools wrongly
    aa, ab, family = (frame[frame["kind"] == kind] for kind in ("aa", "ab", "family"))
    out = aa.groupby(["metric", "cuped"]).agg(fpr=("rejected", "mean"), fpr_dunnett=("rejected_dunnett", "mean"))
    out = out.join(ab.groupby(["metric", "cuped"]).agg(coverage=("covered", "mean"), width=("width", "mean"),
                                                       applied=("cuped_applied", "mean")))
    out = out.join(family.groupby(["metric", "cuped"]).agg(simultaneous=("covered", "mean")))
    out = out.reset_index().assign(design=design.name)
    out["expected_ratio"] = out["metric"].map({m: float(np.mean(r)) for m, r in expected.items()})
    return out


def peeking(runs: int, rng: np.random.Generator) -> pd.DataFrame:
    """A 2-arm campaign looked at daily for 7 days: coverage at every look, fixed-n vs always-valid."""
    design = DESIGNS[0]
    records = []
    for kind, effects in (("aa", {}), ("ab", {"treatment": EFFECT})):
        truth = true_effects(design, effects)
        for _ in range(runs):
            units = simulate(rng, design, effects)
            for cuped in (False, True):
                looks = [analyse(units[units["day"] <= day], cuped, planned=design.arms, correction="holm")
                         for day in range(7)]
                for metric in CALIBRATED:
                    rows = [next(c for c in look if c.metric == metric) for look in looks]
                    true = truth[(metric, "treatment")]
                    records.append({
                        "kind": kind, "metric": metric, "cuped": cuped,
                        # Floats: pandas averages a column of numpy bools mixed with NaN wrongly.
                        "fixed": float(all(r.ci_low <= true <= r.ci_high for r in rows)),
                        "sequential": float(all(r.seq_ci_low <= true <= r.seq_ci_high for r in rows)),
                        "fixed_width": rows[-1].ci_high - rows[-1].ci_low,
                        "seq_width": rows[-1].seq_ci_high - rows[-1].seq_ci_low,
                    })
    frame = pd.DataFrame(records)
    return frame.groupby(["metric", "cuped", "kind"]).mean(numeric_only=True).reset_index()


def _pct(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f} %"


def _flag(value: float, low: float, high: float) -> str:
    return "" if low <= value <= high else " **miss**"


def table(results: pd.DataFrame) -> list[str]:
    lines = ["| design | metric | CUPED | FPR (A/A, Holm) | FPR (A/A, Dunnett) | 95 % CI coverage (A/B) | "
             "mean CI width | width vs no CUPED (expected sqrt(1 - rho^2)) | every arm in its simultaneous CI (A/B) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for design in results["design"].unique():
        block = results[results["design"] == design]
        for metric in CALIBRATED:
            off = block[(block["metric"] == metric) & ~block["cuped"]].iloc[0]
            on = block[(block["metric"] == metric) & block["cuped"]].iloc[0]
            rows = [(off, "off")] + ([(on, "on")] if on["applied"] > 0 else [])
            for row, label in rows:
                ratio = "" if label == "off" else f"{row['width'] / off['width']:.3f} ({row['expected_ratio']:.3f})"
                lines.append(
                    f"| {design} | {metric} | {label if metric != 'revenue_per_order' else 'n/a (ratio)'} | "
                    f"{_pct(row['fpr'])}{_flag(row['fpr'], 0.04, 0.06)} | "
                    f"{_pct(row['fpr_dunnett'])}{_flag(row['fpr_dunnett'], 0.04, 0.06)} | "
                    f"{_pct(row['coverage'])}{_flag(row['coverage'], 0.94, 0.96)} | {row['width']:.4g} | {ratio} | "
                    f"{_simultaneous(row)} |")
    return lines


def _simultaneous(row: pd.Series) -> str:
    value = row.get("simultaneous", math.nan)
    return "one arm" if pd.isna(value) else f"{_pct(value)}{_flag(value, 0.94, 0.96)}"


def peeking_table(frame: pd.DataFrame) -> list[str]:
    lines = ["| metric | CUPED | truth held at all 7 looks, fixed-n CI (A/B) | same, always-valid (A/B) | "
             "A/A ever significant, fixed-n | same, always-valid | width at day 7, always-valid / fixed |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for metric in CALIBRATED:
        for cuped in (False, True):
            if metric == "revenue_per_order" and cuped:
                continue
            rows = frame[(frame["metric"] == metric) & (frame["cuped"] == cuped)].set_index("kind")
            ab, aa = rows.loc["ab"], rows.loc["aa"]
            lines.append(f"| {metric} | {'on' if cuped else 'off'} | {_pct(ab['fixed'])} | {_pct(ab['sequential'])} | "
                         f"{_pct(1 - aa['fixed'])} | {_pct(1 - aa['sequential'])} | "
                         f"{ab['seq_width'] / ab['fixed_width']:.2f} |")
    return lines


def _run_task(design: Design | None, runs: int, stream: np.random.SeedSequence) -> pd.DataFrame:
    """One design's calibration, or the peeking check (``design`` None), on its own random stream."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(stream)
    frame = peeking(runs, rng) if design is None else calibrate(design, runs, rng)
    print(f"{'peeking' if design is None else design.name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return frame


def section(args: argparse.Namespace, results: list[pd.DataFrame], peeks: pd.DataFrame | None, seconds: float) -> str:
    """RESULTS.md's section for this run: command, commit, machine, date, the tables."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=RESULTS.parent).stdout.strip()
    designs = "" if args.designs is None else f" --designs {args.designs}"
    lines = [
        HEADING, "",
        f"Command: `.venv/bin/python bench/ab_calibration.py --runs {args.runs} --peeking-runs {args.peeking_runs} "
        f"--seed {args.seed}{designs} --jobs {args.jobs}`  ",
        f"Commit: {commit}; machine: {machine()}  ",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {seconds / 60:.0f} min. {args.runs:,} A/A and {args.runs:,} A/B "
        f"campaigns per design, analysed by `ml.ab.analyze` as `measure` and `kpi_campaign_lift` do; targets: "
        "FPR 4-6 %, coverage 94-96 % (**miss** marks a value outside). Monte Carlo standard error: "
        f"{100 * math.sqrt(0.05 * 0.95 / args.runs):.2f} points at 5 % or 95 %.",
        "", *table(pd.concat(results, ignore_index=True)), "",
    ]
    if peeks is not None:
        lines += [
            f"Peeking: the 2-arm design's members arrive over 7 days and the campaign is analysed every day "
            f"({args.peeking_runs:,} A/A and {args.peeking_runs:,} A/B campaigns); the always-valid interval is "
            "tuned to the planned 2,000 a side.", "", *peeking_table(peeks), "",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="A/A and A/B campaigns each, per design")
    parser.add_argument("--peeking-runs", type=int, default=1000, help="0 leaves the peeking check out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--designs", help="comma-separated keys of the designs to run (default: all): "
                                          + ", ".join(d.key for d in DESIGNS))
    parser.add_argument("--jobs", type=int, default=1, help="designs run in parallel processes")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave RESULTS.md alone")
    args = parser.parse_args()
    chosen = DESIGNS if args.designs is None else [d for d in DESIGNS if d.key in args.designs.split(",")]
    unknown = set() if args.designs is None else set(args.designs.split(",")) - {d.key for d in DESIGNS}
    if unknown:
        parser.error(f"unknown designs {sorted(unknown)}")
    started = time.perf_counter()
    tasks: list[Design | None] = [*chosen, *([None] if args.peeking_runs > 0 else [])]  # None: peeking
    # One random stream per task, so the draws are the same whatever --jobs is.
    streams = np.random.SeedSequence(args.seed).spawn(len(tasks))
    calls = [(task, args.peeking_runs if task is None else args.runs, stream) for task, stream in zip(tasks, streams, strict=True)]
    if args.jobs > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            done = list(pool.map(_run_task, *zip(*calls, strict=True)))
    else:
        done = [_run_task(*call) for call in calls]
    results = [frame for task, frame in zip(tasks, done, strict=True) if task is not None]
    peeks = done[-1] if args.peeking_runs > 0 else None
    text = section(args, results, peeks, time.perf_counter() - started)
    print(text)
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()
