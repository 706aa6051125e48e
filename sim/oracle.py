"""What a cycle's campaign was really worth, and what the best plan under the same rules would have been.

Only benchmarks, tests and the demo's learning curve call this: it reads the simulator's ground truth,
which the platform itself never sees. Both plans are valued the same way, by the true expected
incremental margin of each treated customer's action (net of discount and contact cost,
``incremental_profit__<action>`` in ``truth/effects``); the oracle is the platform's own optimiser
(``ml.decide.design_campaign``) fed the true effects instead of the models' estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from campaign_loop.actions import ACTIONS, CHANNELS, trigger_of_campaign
from campaign_loop.config import Settings
from ml.decide import DesignConfig, design_campaign
from ml.evaluate import oracle_qini, qini_coefficient
from sim import ids
from sim.behaviour import (
    EXTRA_ORDER_RATE,
    MARGIN_RATE,
    ORDER_VALUE_FACTOR,
    baseline_probability,
    expected_incremental_profit,
    retention_columns,
    uplift,
)
from sim.calendar import DAY_S, epoch_day, exposure_weeks, period_days
from sim.history import arrivals
from sim.period import ARRIVALS, _member_or_null, _rng
from sim.world import RESPONSE_CLASSES, WorldStore, concat_people
from sim.worlds import WorldContext, defection_probability


@dataclass(frozen=True)
class CycleValue:
    cycle: int
    cycle_id: str
    treated: int
    incremental_profit: float
    oracle_treated: int
    oracle_incremental_profit: float

    @property
    def ratio_to_oracle(self) -> float | None:
        if self.oracle_incremental_profit <= 0:
            return None
        return self.incremental_profit / self.oracle_incremental_profit


def _effects(settings: Settings, cycle: int) -> pd.DataFrame:
    return pd.read_parquet(settings.truth_dir / "effects" / f"{settings.cycle_key(cycle)}.parquet")


def by_member(effects: pd.DataFrame) -> pd.DataFrame:
    """A cycle's effects indexed by ``member_id``: members only, one row each (the first, if repeated)."""
    return effects.dropna(subset=["member_id"]).drop_duplicates("member_id").set_index("member_id")


def plan_value(effects: pd.DataFrame, member_id: pd.Series, action: pd.Series) -> float:
    """True expected incremental profit of treating ``member_id[i]`` with ``action[i]`` (``<offer>__<channel>``)."""
    if len(member_id) == 0:
        return 0.0
    lookup = effects.dropna(subset=["member_id"]).set_index("member_id")
    frame = pd.DataFrame({"member_id": member_id.to_numpy(), "action": action.to_numpy()})
    frame = frame[frame["member_id"].isin(lookup.index)]
    total = 0.0
    for name, rows in frame.groupby("action"):
        total += float(lookup.loc[rows["member_id"], f"incremental_profit__{name}"].astype(float).sum())
    return total


def executed_value(settings: Settings, cycle: int, effects: pd.DataFrame | None = None) -> tuple[int, float]:
    """The campaign the simulator executed in ``cycle`` (treatment arm only), valued by the truth."""
    effects = _effects(settings, cycle) if effects is None else effects
    outcomes = pd.read_parquet(settings.truth_dir / "outcomes" / f"{settings.cycle_key(cycle)}.parquet")
    treated = outcomes[outcomes["arm"] == "treatment"]
    return len(treated), plan_value(effects, treated["member_id"], treated["action"])


def people_at_start(settings: Settings, cycle: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The people of ``cycle`` *before* it is simulated, and their baseline purchase probabilities.

    It replays the deterministic start of the period (the state after ``cycle - 1`` plus the period's
    arrivals, drawn from their own random stream, so they do not depend on the plan). ``cycle`` must
    be >= 1 (cycle 0 creates the world).
    """
    if cycle < 1:
        raise ValueError("the people at a cycle's start need cycle >= 1: cycle 0 creates the world")
    people = WorldStore(settings).load_people(cycle - 1)
    days = period_days(settings.cycle_start(cycle), settings.cycle_days)
    p_start, p_end = int(days[0]) * DAY_S, (int(days[-1]) + 1) * DAY_S
    new = arrivals(_rng(settings, cycle, ARRIVALS), settings, len(people["person_id"]), p_start, p_end)
    people = concat_people(people, new) if len(new["person_id"]) else people
    return people, baseline_probability(people, exposure_weeks(days))


def effects_at_start(settings: Settings, cycle: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The truth of ``cycle`` *before* it is simulated: ``(effects, spend)`` as ``simulate_period`` will write them.

    What an oracle policy needs to design the campaign of a cycle that has not happened yet
    (:func:`people_at_start`, then the same baseline probabilities and uplifts). ``spend`` is each
    row's latent spend level (for ``expected_spend``).
    """
    people, base = people_at_start(settings, cycle)
    world = WorldContext(settings.world, settings.seed, epoch_day(settings.cycle_start(cycle)) * DAY_S)
    frame = pd.DataFrame({
        "person_id": people["person_id"],
        "member_id": _member_ids(people),
        "alive": people["alive"].astype(bool),
        "response_class": ids.vocab(RESPONSE_CLASSES, people["response_class"]).to_pandas(),
        "baseline_probability": base.astype(np.float32),
    })
    for c in CHANNELS:
        frame[f"consent_{c}"] = people[f"consent_{c}"].astype(bool)
    for action in ACTIONS:
        lift = uplift(people, base, action.offer.offer_type, action.offer.offer_value, action.channel, world=world)
        frame[f"uplift__{action.name}"] = lift.astype(np.float32)
        frame[f"incremental_profit__{action.name}"] = expected_incremental_profit(
            people, base, lift, action.offer.offer_type, action.offer.offer_value, action.cost_per_contact
        ).astype(np.float32)
    for name, values in retention_columns(people, world, settings.cycle_days / 7.0, ACTIONS).items():
        frame[name] = values.astype(np.float32)
    return frame, np.asarray(people["spend"], dtype=float)


def _member_ids(people: dict[str, np.ndarray]) -> pd.Series:
    return _member_or_null(people, np.arange(len(people["person_id"]))).to_pandas()


CONTACT_WINDOW_DAYS = 30  # the window of ml.features.scoring_frame's contacts_last_30d


def recent_contacts(settings: Settings, cycle: int, member_id: pd.Series) -> np.ndarray:
    """Marketing contacts of each member in the 30 days before ``cycle`` starts, from the executed truth.

    Counts the treatment rows of earlier cycles' outcomes (the holdout is not contacted), each dated by
    its cycle's first day, when the platform sends; the same cap then binds the oracle as the platform.
    """
    from datetime import timedelta

    start = settings.cycle_start(cycle)
    counts = pd.Series(0, index=pd.Index(member_id.dropna().unique()), dtype="int64")
    for earlier in range(cycle - 1, -1, -1):
        if settings.cycle_start(earlier) < start - timedelta(days=CONTACT_WINDOW_DAYS):
            break
        path = settings.truth_dir / "outcomes" / f"{settings.cycle_key(earlier)}.parquet"
        if not path.exists():
            continue
        outcomes = pd.read_parquet(path, columns=["member_id", "arm"])
        sent = outcomes.loc[(outcomes["arm"] == "treatment") & outcomes["member_id"].notna(), "member_id"]
        counts = counts.add(sent.value_counts(), fill_value=0).astype("int64")
    return member_id.map(counts).fillna(0).astype("int64").to_numpy()


def oracle_customers(
    settings: Settings, cycle: int, effects: pd.DataFrame | None = None, spend: np.ndarray | None = None,
) -> pd.DataFrame:
    """The decisioning input with the true effects: what a perfect model would have handed the optimiser.

    The contact-frequency cap binds it as it binds the platform (``contacts_last_30d`` from the executed
    campaigns, :func:`recent_contacts`); an unsubscribe shows as the channel's withdrawn consent.

    ``spend``: the latent spend level of each row of ``effects`` (as :func:`effects_at_start` returns
    it); without it, looked up in the state after the cycle before (people who arrived during the
    cycle then get the mean).
    """
    effects = _effects(settings, cycle) if effects is None else effects
    if spend is not None:
        spend = pd.Series(np.asarray(spend, dtype=float), index=effects.index)
    keep = effects["member_id"].notna()
    if "alive" in effects:
        keep &= effects["alive"].astype(bool)
    members = effects[keep]
    if spend is not None:
        member_spend = spend[keep].to_numpy(float)
    elif cycle > 0:
        # The state at the cycle's start is the state after the cycle before (cycle 0 starts from the new world).
        people = WorldStore(settings).load_people(cycle - 1)
        spend_by_person = pd.Series(people["spend"], index=people["person_id"])
        member_spend = spend_by_person.reindex(members["person_id"]).to_numpy(float)
    else:
        member_spend = np.full(len(members), np.nan)
    expected_spend = member_spend * ORDER_VALUE_FACTOR * (1.0 + EXTRA_ORDER_RATE)
    fill = float(np.nanmean(expected_spend)) if np.isfinite(expected_spend).any() else 60.0
    frame = pd.DataFrame({
        "customer_id": members["member_id"].to_numpy(),
        "member_id": members["member_id"].to_numpy(),
        "segment": members["response_class"].astype(str).to_numpy(),  # the oracle's plans stratify by the true class
        "p_buy": members["baseline_probability"].astype(float).to_numpy(),
        "expected_spend": np.nan_to_num(expected_spend, nan=fill),
        "margin_rate": MARGIN_RATE,
        "unsubscribed_recently": False,
        "contacts_last_30d": recent_contacts(settings, cycle, members["member_id"]),
    })
    for channel in CHANNELS:
        frame[f"consent_{channel}"] = members[f"consent_{channel}"].astype(bool).to_numpy()
    for action in ACTIONS:
        frame[f"uplift__{action.name}"] = members[f"uplift__{action.name}"].astype(float).to_numpy()
    return frame


def oracle_plan(settings: Settings, cycle: int, customers: pd.DataFrame | None = None) -> Any:
    """The oracle's campaign for ``cycle``: the platform's optimiser on the true effects, no exploration."""
    customers = oracle_customers(settings, cycle) if customers is None else customers
    # This cycle's value, as evaluate_cycle measures it: the retained value is compare_horizons' business.
    config = DesignConfig.from_settings(settings, settings.cycle_key(cycle),
                                        exploration="epsilon", epsilon=0.0, value_horizon_weeks=0)
    return design_campaign(customers, config)


def evaluate_cycle(settings: Settings, cycle: int) -> CycleValue:
    """The executed campaign of ``cycle`` against the oracle plan under the same budget and rules."""
    effects = _effects(settings, cycle)
    treated, profit = executed_value(settings, cycle, effects)
    plan = oracle_plan(settings, cycle, oracle_customers(settings, cycle, effects))
    oracle_rows = plan.rows[plan.rows["arm"] == "treatment"]
    oracle_action = oracle_rows["offer"].astype(str) + "__" + oracle_rows["channel"].astype(str)
    return CycleValue(
        cycle=cycle, cycle_id=settings.cycle_key(cycle), treated=treated, incremental_profit=profit,
        oracle_treated=len(oracle_rows),
        oracle_incremental_profit=plan_value(effects, oracle_rows["member_id"], oracle_action),
    )


@dataclass(frozen=True)
class UpliftRanking:
    """The uplift model's Qini on a cycle's designed campaign beside the oracle's, on the same assignments."""

    assignments: int
    qini_model: float
    qini_oracle: float
    spearman_true: float  # rank correlation of the plan's expected uplift with the true one (NaN if either is flat)


def uplift_ranking(settings: Settings, cycle: int) -> UpliftRanking | None:
    """Rank the executed plan's customers (both arms) by the uplift the plan expected of their action, and
    by their true uplift; score both with the Qini coefficient on who really bought. None without a plan."""
    from scipy.stats import spearmanr

    key = settings.cycle_key(cycle)
    plan_file = settings.plan_path(key)
    if not plan_file.exists():
        return None
    plan = pd.read_parquet(plan_file)
    if "expected_uplift" not in plan:
        return None
    outcomes = pd.read_parquet(settings.truth_dir / "outcomes" / f"{key}.parquet",
                               columns=["member_id", "campaign_id", "purchased"])
    rows = plan.merge(outcomes, on=["member_id", "campaign_id"], how="inner")
    effects = by_member(_effects(settings, cycle))
    uplifts = effects[[c for c in effects.columns if c.startswith("uplift__")]]
    column = uplifts.columns.get_indexer("uplift__" + rows["offer"].astype(str) + "__" + rows["channel"].astype(str))
    true = uplifts.reindex(rows["member_id"]).to_numpy(float)[np.arange(len(rows)), column]
    treatment = (rows["arm"] == "treatment").to_numpy(float)
    bought = rows["purchased"].to_numpy(float)
    expected = rows["expected_uplift"].to_numpy(float)
    spearman = float(spearmanr(expected, true).statistic) if len(rows) > 2 and np.ptp(expected) > 0 \
        and np.ptp(true) > 0 else math.nan
    return UpliftRanking(len(rows), qini_coefficient(expected, treatment, bought), oracle_qini(true, treatment, bought),
                         spearman)


# ------------------------------------------------------------------------------------- value over a horizon


def survival(base: np.ndarray, uplift_: np.ndarray, p_drop: np.ndarray, defection: np.ndarray,
             retained: np.ndarray) -> np.ndarray:
    """P(alive at the period's end) of an alive person: BG/NBD's dropout after each of the period's orders
    (1 + Poisson(EXTRA_ORDER_RATE) if they buy), then world r's defection, lowered by ``retained``."""
    buy = np.clip(base + uplift_, 0.0, 1.0)
    keep_if_buy = (1.0 - p_drop) * np.exp(-EXTRA_ORDER_RATE * p_drop)
    return ((1.0 - buy) + buy * keep_if_buy) * (1.0 - defection * (1.0 - retained))


def future_margin(settings: Settings, cycle: int, people: dict[str, np.ndarray], weeks: float) -> np.ndarray:
    """Expected gross margin each person earns in the ``weeks`` after ``cycle`` if alive when it ends, with no
    campaign: the simulator's own seasonal purchase rates, BG/NBD dropout and (world r) defection."""
    alive = dict(people, alive=np.ones(len(people["person_id"]), dtype=bool))
    margin_if_buy = alive["spend"].astype(float) * ORDER_VALUE_FACTOR * (1.0 + EXTRA_ORDER_RATE) * MARGIN_RATE
    p_drop = alive["p_drop"].astype(float)
    defection = (defection_probability(alive, settings.cycle_days / 7.0) if settings.world == "r"
                 else np.zeros(len(p_drop)))
    alive_share, total = np.ones(len(p_drop)), np.zeros(len(p_drop))
    for k in range(1, int(np.ceil(weeks * 7 / settings.cycle_days)) + 1):
        base = baseline_probability(alive, exposure_weeks(period_days(settings.cycle_start(cycle + k), settings.cycle_days)))
        total += alive_share * base * margin_if_buy
        alive_share *= survival(base, np.zeros_like(base), p_drop, defection, np.zeros_like(base))
    return total


def horizon_values(settings: Settings, cycle: int,
                   weeks: float = 52.0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The truth of ``cycle`` valued over ``weeks`` more: ``(effects, spend, future)`` where ``effects`` is
    :func:`effects_at_start`'s frame plus ``value__<action>`` (this cycle's true incremental profit plus the
    change the action makes to P(alive at the cycle's end) times ``future``) and ``future`` is each row's
    :func:`future_margin` (``spend`` as :func:`effects_at_start`'s). In worlds without defection the change is BG/NBD's: an extra purchase risks a dropout."""
    effects, spend = effects_at_start(settings, cycle)
    people, base = people_at_start(settings, cycle)
    future = future_margin(settings, cycle, people, weeks)
    p_drop = people["p_drop"].astype(float)
    defection = effects["defection_probability"].to_numpy(float) if "defection_probability" in effects else np.zeros(len(base))
    untreated = survival(base, np.zeros(len(base)), p_drop, defection, np.zeros(len(base)))
    for action in ACTIONS:
        retained = (effects[f"retention__{action.name}"].to_numpy(float) if f"retention__{action.name}" in effects
                    else np.zeros(len(base)))
        treated = survival(base, effects[f"uplift__{action.name}"].to_numpy(float), p_drop, defection, retained)
        effects[f"value__{action.name}"] = (effects[f"incremental_profit__{action.name}"].to_numpy(float)
                                            + np.where(effects["alive"], treated - untreated, 0.0) * future)
    return effects, spend, future


def plan_horizon_value(effects: pd.DataFrame, member_id: pd.Series, action: pd.Series) -> float:
    """True value over the horizon of treating ``member_id[i]`` with ``action[i]``: :func:`plan_value` on the
    ``value__<action>`` columns of :func:`horizon_values`."""
    renamed = effects.drop(columns=[c for c in effects.columns if c.startswith("incremental_profit__")])
    renamed = renamed.rename(columns=lambda c: c.replace("value__", "incremental_profit__", 1))
    return plan_value(renamed, member_id, action)


@dataclass(frozen=True)
class HorizonComparison:
    """Two allocations of one cycle's budget, each valued by the truth over this cycle and over the horizon."""

    cycle_id: str
    treated: dict[str, int]  # allocation -> customers treated
    cycle_value: dict[str, float]  # allocation -> true incremental profit of this cycle
    horizon_value: dict[str, float]  # allocation -> true incremental value over the horizon (this cycle included)
    budget_used: dict[str, float]


def horizon_inputs(effects: pd.DataFrame, future: np.ndarray, customers: pd.DataFrame, noise_sd: float = 0.0,
                   seed: int = 0) -> pd.DataFrame:
    """``customers`` (:func:`oracle_customers`) with ``p_churn`` (the true P(defect this cycle)) and ``clv_52w``
    (the true expected revenue over the horizon if alive), each times a lognormal error of ``noise_sd`` when
    given, standing in for models that estimate them."""
    truth = pd.DataFrame({"member_id": effects["member_id"], "future": future / MARGIN_RATE,
                          "defection": effects.get("defection_probability", pd.Series(0.0, index=effects.index))})
    truth = by_member(truth).reindex(customers["member_id"])
    rng = np.random.default_rng(seed)
    error = (lambda: rng.lognormal(0.0, noise_sd, len(customers))) if noise_sd > 0 else (lambda: 1.0)
    return customers.assign(p_churn=np.clip(truth["defection"].to_numpy(float) * error(), 0.0, 1.0),
                            clv_52w=truth["future"].to_numpy(float) * error())


def compare_horizons(settings: Settings, cycle: int, weeks: int = 52, retention_effect: float = 0.2,
                     noise_sd: float = 0.0, scores: pd.DataFrame | None = None) -> HorizonComparison:
    """The platform's optimiser on the true effects of ``cycle`` twice, with ``value_horizon_weeks`` 0 (this
    cycle's margin) and ``weeks`` (plus the retained value under the assumed ``retention_effect``), no exploration,
    the same budget and rules; both plans valued by the truth (:func:`horizon_values`).

    ``scores`` (``member_id``, ``p_churn``, ``clv_52w``: the platform's, ``exports/scores/<cycle_id>.parquet``)
    replace the true P(churn) and CLV of :func:`horizon_inputs`; a member they lack keeps no retained value."""
    effects, spend, future = horizon_values(settings, cycle, weeks)
    customers = horizon_inputs(effects, future, oracle_customers(settings, cycle, effects, spend), noise_sd,
                               seed=settings.seed)
    if scores is not None:
        platform = scores.dropna(subset=["member_id"]).drop_duplicates("member_id").set_index("member_id")
        customers = customers.assign(**{c: customers["member_id"].map(platform[c]).astype(float)
                                        for c in ("p_churn", "clv_52w")})
    out: dict[str, dict[str, Any]] = {"treated": {}, "cycle_value": {}, "horizon_value": {}, "budget_used": {}}
    for name, horizon in (("one_cycle", 0), (f"ltv_{weeks}w", weeks)):
        config = DesignConfig.from_settings(settings, settings.cycle_key(cycle), exploration="epsilon", epsilon=0.0,
                                            value_horizon_weeks=horizon, retention_effect=retention_effect)
        plan = design_campaign(customers, config)
        rows = plan.rows[plan.rows["arm"] == "treatment"]
        action = rows["offer"].astype(str) + "__" + rows["channel"].astype(str)
        out["treated"][name] = len(rows)
        out["cycle_value"][name] = plan_value(effects, rows["member_id"], action)
        out["horizon_value"][name] = plan_horizon_value(effects, rows["member_id"], action)
        out["budget_used"][name] = float(plan.summary["budget"]["used"])
    return HorizonComparison(cycle_id=settings.cycle_key(cycle), **out)


def true_trigger_lift(settings: Settings, cycle: int) -> dict[str, tuple[float, int]]:
    """Per trigger that ran in ``cycle``: the mean true effect on purchase of its members, both arms (what its
    randomised comparison estimates), and how many members the world assigned to it; from the simulator's
    ``trigger_outcomes`` (each member's uplift of the trigger's action on their channel, nothing where the send
    could not be delivered). Empty when no trigger ran."""
    path = settings.truth_dir / "trigger_outcomes" / f"{settings.cycle_key(cycle)}.parquet"
    if not path.exists():
        return {}
    truth = pd.read_parquet(path, columns=["campaign_id", "uplift"])
    by_trigger = truth.groupby(truth["campaign_id"].map(trigger_of_campaign))["uplift"]
    return {str(name): (float(g.mean()), len(g)) for name, g in by_trigger}


def media_truth(settings: Settings, first: date | None = None, last: date | None = None) -> pd.DataFrame:
    """The true effect of each paid channel over the days ``first..last`` (default: every simulated day) of a
    world with ``media_effect`` (sim/media.py): one row per channel with its spend, the incremental revenue
    its spend was expected to cause (carry-over into the window included) and realised, their ROAS, and the
    response's parameters (adstock ``alpha``, saturation ``lam`` and ``beta``, ``reference_spend`` a day)."""
    paths = sorted((settings.truth_dir / "media").glob("*.parquet"))
    if not paths:
        raise FileNotFoundError(f"{settings.truth_dir / 'media'}: no media truth; simulate with media_effect on")
    days = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    day = pd.to_datetime(days["spend_date"]).dt.date
    days = days[(day >= (first or day.min())) & (day <= (last or day.max()))]
    out = days.groupby("channel", sort=False).agg(
        spend=("spend", "sum"), expected_revenue=("expected_revenue", "sum"),
        realised_revenue=("realised_revenue", "sum"), orders=("orders", "sum"),
        alpha=("alpha", "first"), lam=("lam", "first"), beta=("beta", "first"),
        reference_spend=("reference_spend", "mean"))
    out["roas"] = out["expected_revenue"] / out["spend"]
    out["realised_roas"] = out["realised_revenue"] / out["spend"]
    return out.reset_index()


def media_daily_rows(settings: Settings) -> pd.DataFrame:
    """What ``kpi_media_daily`` holds for the paid channels, from the truth (clean, every day): one row per
    day and channel with the spend and the day's revenue (every order's total, the media's included)."""
    spend = pd.concat([pd.read_parquet(p) for p in sorted((settings.truth_dir / "media").glob("*.parquet"))])
    orders = pd.concat([pd.read_parquet(p, columns=["ordered_at", "total_cents"])
                        for p in sorted((settings.truth_dir / "orders").glob("*.parquet"))])
    day = pd.to_datetime(orders["ordered_at"]).dt.floor("D")
    revenue = (orders["total_cents"].groupby(day.dt.tz_localize(None) if day.dt.tz else day).sum() / 100).rename("revenue")
    rows = spend.rename(columns={"spend_date": "activity_date"})[["activity_date", "channel", "spend"]]
    rows["activity_date"] = pd.to_datetime(rows["activity_date"])
    return rows.merge(revenue, left_on="activity_date", right_index=True)
