"""Mart-level checks as plain functions of DataFrames and numbers, so they run on any mart or SQL result.

Each returns ``CheckResult`` rows with a severity. ``mart_checks`` wires them to the dbt marts of one
cycle (``marts.fct_orders``, ``marts.dim_customers``, ``marts.fct_customer_features``,
``marts.fct_campaign_sends``); the functions themselves know nothing about the warehouse.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from expectations.results import CheckResult, Severity

# Normal-consistent MAD: 1.4826 * MAD estimates the standard deviation of normal data.
MAD_SCALE = 1.4826
# A flat history (MAD 0) would flag any change at all; changes within this share of the median are normal.
MIN_RELATIVE_SCALE = 0.05


# --- reconciliation and freshness -----------------------------------------------------------------

def check_reconciliation(
    mart_total: float, staged_total: float, *, table: str = "marts.fct_orders", column: str = "total_amount",
    tolerance: float = 0.01, severity: Severity = "critical",
) -> CheckResult:
    """The mart's total equals the staged total within ``tolerance`` (a cent by default)."""
    difference = abs(float(mart_total) - float(staged_total))
    return CheckResult(
        "reconciliation", table, column, severity, difference <= tolerance, difference, tolerance,
        f"mart {float(mart_total):.2f} vs staged {float(staged_total):.2f}",
    )


def check_freshness(
    latest: datetime | pd.Timestamp | None, window_start: datetime, window_end: datetime, *,
    table: str = "marts.fct_orders", column: str = "ordered_at", severity: Severity = "critical",
) -> CheckResult:
    """The latest event lies inside the cycle [start, end): the mart saw this cycle and nothing after it."""
    if latest is None or pd.isna(latest):
        return CheckResult("freshness", table, column, severity, False, None, None, "no events at all")
    latest = pd.Timestamp(latest).to_pydatetime()
    ok = window_start <= latest < window_end
    lag_days = (window_end - latest).total_seconds() / 86_400
    return CheckResult(
        "freshness", table, column, severity, ok, round(lag_days, 4), None,
        f"latest {latest:%Y-%m-%d %H:%M} vs cycle [{window_start:%Y-%m-%d}, {window_end:%Y-%m-%d}); "
        "observed = days before the cycle end",
    )


# --- robust anomalies -----------------------------------------------------------------------------

def robust_z(history: Sequence[float], value: float) -> tuple[float, float, float]:
    """(z, median, scale): distance of ``value`` from the median of ``history`` in robust standard deviations."""
    values = np.asarray([v for v in history if v is not None and np.isfinite(v)], dtype=float)
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median)))
    scale = max(MAD_SCALE * mad, MIN_RELATIVE_SCALE * abs(median), 1e-9)
    return abs(float(value) - median) / scale, median, scale


def check_anomaly(
    history: Sequence[float], value: float, *, kpi: str, table: str = "kpi", k: float = 5.0,
    min_history: int = 4, severity: Severity = "warning",
) -> CheckResult:
    """``value`` lies within median ± k·(1.4826·MAD) of the recent cycles (``history``, oldest first)."""
    clean = [float(v) for v in history if v is not None and np.isfinite(v)]
    if len(clean) < min_history:
        return CheckResult("anomaly", table, kpi, severity, True, None, k,
                           f"{len(clean)} cycles of history, {min_history} needed: not judged")
    z, median, scale = robust_z(clean, value)
    return CheckResult(
        "anomaly", table, kpi, severity, z <= k, round(z, 4), k,
        f"{kpi}={float(value):.6g} vs median {median:.6g} ± {k:g}×{scale:.4g} over {len(clean)} cycles",
    )


def kpi_anomalies(
    kpis: pd.DataFrame, cycle_id: str, columns: Iterable[str], *, table: str = "kpi", k: float = 5.0,
    min_history: int = 4, lookback: int = 8, severity: Severity = "warning",
) -> list[CheckResult]:
    """Anomaly checks of one cycle's KPIs (one row per ``cycle_id``) against the ``lookback`` cycles before it."""
    ordered = kpis.sort_values("cycle_id")
    current = ordered[ordered["cycle_id"] == cycle_id]
    before = ordered[ordered["cycle_id"] < cycle_id].tail(lookback)
    rows = []
    for column in columns:
        if current.empty:
            rows.append(CheckResult("anomaly", table, column, severity, False, None, k, f"no KPI row for {cycle_id}"))
            continue
        rows.append(check_anomaly(before[column].tolist(), float(current[column].iloc[0]), kpi=column,
                                  table=table, k=k, min_history=min_history, severity=severity))
    return rows


# --- feature drift --------------------------------------------------------------------------------

def psi(reference: Sequence[float] | np.ndarray | pd.Series, current: Sequence[float] | np.ndarray | pd.Series,
        bins: int = 10, floor: float = 1e-4) -> float:
    """Population stability index of ``current`` against ``reference``, on the reference's quantile bins.

    Bins are reference deciles (deduplicated, so a discrete feature gets one bin per value); values
    outside the reference range fall in the outer bins; missing values are their own bin. Empty bins are
    floored at ``floor`` so a category that vanished counts as large drift instead of infinity.
    """
    ref = pd.Series(reference, dtype="float64")
    cur = pd.Series(current, dtype="float64")
    if ref.empty or cur.empty:
        return float("nan")
    present = ref.dropna()
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1))) if len(present) else np.array([])
    inner = edges[1:-1]

    def shares(values: pd.Series) -> np.ndarray:
        known = values.dropna().to_numpy()
        counts = np.bincount(np.searchsorted(inner, known, side="right"), minlength=len(inner) + 1).astype(float)
        counts = np.append(counts, float(values.isna().sum()))
        return np.maximum(counts / len(values), floor)

    expected, actual = shares(ref), shares(cur)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def check_drift(
    reference: pd.DataFrame, current: pd.DataFrame, features: Iterable[str], *,
    table: str = "marts.fct_customer_features", warn: float = 0.1, critical: float = 0.25, bins: int = 10,
) -> list[CheckResult]:
    """PSI per feature against the training reference: two rows each, warning above ``warn``, critical above ``critical``."""
    rows = []
    for feature in features:
        if feature not in reference or feature not in current:
            rows.append(CheckResult("feature_drift", table, feature, "critical", False, None, critical,
                                    "feature missing from the reference or the current frame"))
            continue
        value = psi(reference[feature], current[feature], bins=bins)
        for severity, limit in (("warning", warn), ("critical", critical)):
            rows.append(CheckResult(
                "feature_drift", table, feature, severity, bool(np.isfinite(value) and value <= limit),
                round(value, 6) if np.isfinite(value) else None, limit,
                f"PSI vs reference ({len(reference)} → {len(current)} rows)",
            ))
    return rows


# --- randomisation health -------------------------------------------------------------------------

def check_srm(
    counts: Mapping[str, int], expected_shares: Mapping[str, float], *, campaign: str,
    table: str = "marts.fct_campaign_sends", p_min: float = 0.001, severity: Severity = "critical",
) -> CheckResult:
    """Sample-ratio mismatch: chi-square goodness of fit of the arms' sizes to the design's shares."""
    from scipy.stats import chisquare

    arms = sorted(set(counts) | set(expected_shares))
    observed = np.array([float(counts.get(a, 0)) for a in arms])
    shares = np.array([float(expected_shares.get(a, 0.0)) for a in arms])
    if observed.sum() == 0 or len(arms) < 2 or shares.sum() <= 0:
        return CheckResult("srm", table, f"arm ({campaign})", severity, True, None, p_min, "fewer than two arms: not judged")
    expected = shares / shares.sum() * observed.sum()
    if np.any((expected == 0) & (observed > 0)):
        return CheckResult("srm", table, f"arm ({campaign})", severity, False, 0.0, p_min,
                           f"arm(s) the design never assigns received customers: {dict(zip(arms, observed.astype(int), strict=True))}")
    keep = expected > 0
    p_value = float(chisquare(observed[keep], expected[keep]).pvalue)
    sizes = ", ".join(f"{a}={int(o)} (expected {e:.1f})" for a, o, e in zip(arms, observed, expected, strict=True))
    return CheckResult("srm", table, f"arm ({campaign})", severity, p_value >= p_min, p_value, p_min, sizes)


def planned_shares(plan: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Each exported campaign's arm shares as planned: the plan's own arm counts, per campaign.

    A designed plan's ``assignment_probability`` is P(action) x P(arm), so its mean per arm is not the arm
    share; the plan's counts are. Judged against them, a campaign whose holdout was contacted away (one arm
    left) fails instead of being "not judged".
    """
    counts = plan.groupby(["campaign_id", "arm"]).size()
    return {str(c): (g.droplevel(0) / g.sum()).astype(float).to_dict() for c, g in counts.groupby(level=0)}


def design_shares(sends: pd.DataFrame, default_control_share: float | None = None) -> dict[str, float] | None:
    """Each arm's designed share: the mean assignment probability of its members, or a control share given.

    None when neither records the design: equal arms are not assumed, since a 2:1 test or a 10 % holdout
    would then fail as a sample-ratio mismatch.
    """
    arms = sorted(sends["arm"].dropna().unique())
    if "assignment_probability" in sends:
        recorded = sends.groupby("arm")["assignment_probability"].mean().dropna()
        if len(recorded) and set(recorded.index) >= set(arms):
            return recorded.astype(float).to_dict()
    if default_control_share is None or "control" not in arms or len(arms) < 2:
        return None
    rest = (1.0 - default_control_share) / (len(arms) - 1)
    return {a: default_control_share if a == "control" else rest for a in arms}


def standardized_mean_difference(a: pd.Series, b: pd.Series) -> float:
    a, b = pd.Series(a, dtype="float64").dropna(), pd.Series(b, dtype="float64").dropna()
    if a.empty or b.empty:
        return float("nan")
    pooled = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2) if len(a) > 1 and len(b) > 1 else 0.0
    if not np.isfinite(pooled) or pooled == 0:
        return 0.0 if a.mean() == b.mean() else float("inf")
    return float((a.mean() - b.mean()) / pooled)


def check_balance(
    assigned: pd.DataFrame, covariates: Iterable[str], *, campaign: str, control_arm: str = "control",
    table: str = "marts.fct_campaign_sends", smd_max: float = 0.1, severity: Severity = "warning",
) -> list[CheckResult]:
    """Covariate balance: |SMD| of each pre-period covariate between every arm and the control arm."""
    rows = []
    control = assigned[assigned["arm"] == control_arm]
    for arm in sorted(a for a in assigned["arm"].dropna().unique() if a != control_arm):
        treated = assigned[assigned["arm"] == arm]
        for covariate in covariates:
            if covariate not in assigned:
                continue
            value = standardized_mean_difference(treated[covariate], control[covariate])
            ok = bool(np.isfinite(value) and abs(value) <= smd_max) or (control.empty or treated.empty)
            rows.append(CheckResult(
                "covariate_balance", table, f"{covariate} ({campaign}: {arm} vs {control_arm})", severity, ok,
                round(abs(value), 6) if np.isfinite(value) else None, smd_max,
                f"{len(treated)} vs {len(control)} customers",
            ))
    return rows


@dataclass(frozen=True)
class RandomisationRules:
    """Thresholds and severities of the randomisation checks (the ``randomisation`` block of the rules)."""

    srm_p_min: float = 0.001
    smd_max: float = 0.1
    srm_severity: Severity = "critical"
    smd_severity: Severity = "warning"
    control_share: float | None = None  # the designed holdout share where sends record no probabilities
    table: str = "marts.fct_campaign_sends"


def randomisation_checks(
    sends: pd.DataFrame, *, covariates: Iterable[str] = (), plan: Mapping[str, Mapping[str, float]] | None = None,
    rules: RandomisationRules = RandomisationRules(),
) -> list[CheckResult]:
    """SRM and covariate balance per campaign of a sends frame (campaign_id, arm, [assignment_probability], covariates).

    ``plan`` (campaign -> arm -> share, see ``planned_shares``) overrides the shares read from the sends for
    the campaigns the platform exported.
    """
    rows: list[CheckResult] = []
    covariates = list(covariates)
    plan = plan or {}
    # Held out vs contacted over every campaign whose design is known: a plan spread thinly over many
    # offer x channel campaigns leaves each too small to show a sender that contacted the holdout.
    pooled = {"control": 0, "contacted": 0}
    expected = {"control": 0.0, "contacted": 0.0}
    for campaign, group in sends.groupby("campaign_id", sort=True):
        counts = group["arm"].value_counts().to_dict()
        shares = plan.get(str(campaign)) or design_shares(group, rules.control_share)
        if shares is not None and sum(shares.values()) > 0:
            held = shares.get("control", 0.0) / sum(shares.values())
            pooled["control"] += int(counts.get("control", 0))
            pooled["contacted"] += int(len(group) - counts.get("control", 0))
            expected["control"] += len(group) * held
            expected["contacted"] += len(group) * (1 - held)
        rows.append(_campaign_srm(str(campaign), counts, shares, rules))
        rows += check_balance(group, covariates, campaign=str(campaign), table=rules.table, smd_max=rules.smd_max,
                              severity=rules.smd_severity)
    if sends["campaign_id"].nunique() > 1 and min(expected.values()) > 0:
        rows.append(check_srm(pooled, expected, campaign="all campaigns, pooled", table=rules.table,
                              p_min=rules.srm_p_min, severity=rules.srm_severity))
    return rows


def _campaign_srm(campaign: str, counts: Mapping[str, int], shares: Mapping[str, float] | None,
                  rules: RandomisationRules) -> CheckResult:
    if shares is None:
        return CheckResult(
            "srm", rules.table, f"arm ({campaign})", "warning", False, None, rules.srm_p_min,
            f"design unknown: arms {', '.join(f'{a}={n}' for a, n in sorted(counts.items()))} but no "
            "assignment_probability and no exported plan; sample-ratio check skipped (land the "
            "probabilities to check it)")
    return check_srm(counts, shares, campaign=campaign, table=rules.table, p_min=rules.srm_p_min,
                     severity=rules.srm_severity)


# --- keys and relationships -----------------------------------------------------------------------

def check_unique(frame: pd.DataFrame, key: Sequence[str], *, table: str, severity: Severity = "critical") -> CheckResult:
    duplicated = int(frame.duplicated(list(key), keep=False).sum()) if len(frame) else 0
    rate = duplicated / len(frame) if len(frame) else 0.0
    return CheckResult("key_unique", table, ",".join(key), severity, duplicated == 0, rate, 0.0,
                       f"{duplicated} of {len(frame)} rows share a key" if duplicated else "")


def check_relationship(
    child: pd.DataFrame, column: str, parent: pd.DataFrame, parent_column: str, *, table: str, parent_table: str,
    severity: Severity = "critical",
) -> CheckResult:
    """Every non-null ``child[column]`` exists in ``parent[parent_column]`` (referential integrity)."""
    values = child[column].dropna()
    orphans = values[~values.isin(set(parent[parent_column].dropna()))]
    rate = len(orphans) / len(values) if len(values) else 0.0
    shown = ", ".join(map(str, orphans.unique()[:5]))
    return CheckResult(
        "relationship", table, column, severity, orphans.empty, rate, 0.0,
        f"{len(orphans)} of {len(values)} values missing from {parent_table}.{parent_column}"
        + (f" (e.g. {shown})" if shown else ""),
    )


def check_campaign_present(held: Sequence[tuple[str, int]], sends: int, *, table: str,
                           severity: Severity = "warning") -> CheckResult:
    """Sends naming a campaign the warehouse has not got, as ``(campaign_id, sends)`` pairs, most sends first.

    They wait in staging, out of the campaign marts and their measurement, until the campaign's row lands.
    """
    count = sum(n for _, n in held)
    shown = ", ".join(f"{campaign} ({n})" for campaign, n in held[:5]) + (", ..." if len(held) > 5 else "")
    details = "" if not held else (
        f"{count} of {sends} sends name {len(held)} campaign(s) not in stg_marketing__campaigns: {shown}; they are "
        "held out of fct_campaign_sends and the lift until the campaign's row lands (the raw gate's quarantine "
        "names a rejected one)")
    return CheckResult("campaign_present", table, "campaign_id", severity, not held,
                       count / sends if sends else 0.0, 0.0, details)


def statistics_frame(checks: Iterable[CheckResult]) -> pd.DataFrame:
    """The Python checks as one row each, failures spelled out, for the marts.statistics GX suite."""
    rows: list[dict[str, Any]] = []
    for c in checks:
        failure = None if c.success else c.describe()
        rows.append({
            "check": c.check, "table": c.table, "column": c.column, "severity": c.severity,
            "critical_failure": failure if c.severity == "critical" else None,
            "warning_failure": failure if c.severity == "warning" else None,
        })
    columns = ["check", "table", "column", "severity", "critical_failure", "warning_failure"]
    return pd.DataFrame(rows, columns=columns).astype({"critical_failure": "object", "warning_failure": "object"})
