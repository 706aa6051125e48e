"""Campaign policies side by side: the baselines a marketer would use, the platform, and the oracle.

Every policy turns one cycle's customers into a :class:`ml.decide.CampaignPlan` under the same budget,
consent and contact rules (baselines go through :func:`ml.decide.plan_from_choice`, which drops
non-consented actions and truncates to the budget, control arm included):

* ``random``: consenting customers in random order, each a uniformly random allowed action;
* ``rfm``: RFM segments best first (champions, loyal, potential loyalists, ...), within a segment by
  monetary value; ``offer`` (default pct10, the classic "10 % for our best customers") on the
  customer's cheapest consented channel;
* ``propensity``: the likeliest buyers first (``p_buy`` from the propensity champion), same action;
* ``best_action`` (issue 24): the one action whose last measured lift, in margin per contact net of its
  cost, is best, to everyone reachable on its channel; nobody when no action earned its cost;
* ``propensity_best_offer``: the likeliest buyers first, each the best-measured action they consented to
  (no action whose measured lift lost money);
* ``rfm_best_offer``: per RFM segment the offer whose measured lift in that segment (every cycle's
  campaigns pooled) is best, on the customer's cheapest consented channel; segments where no offer
  earned its cost are not contacted; the best segments first;
* ``tlearner_logit`` / ``tlearner_gbm``: a two-model uplift learner (a model of buying when treated, the
  action as a feature, and one when not), logistic or gradient boosting, through the platform's optimiser;
* ``platform``: the real loop (train + design, :mod:`campaign_loop.pipeline`), run by ``bench/loop_value.py``;
* ``platform_ope``: the same with ``policy_choice`` on (``ml.policy_choice``): the design, or a measured-lift
  candidate that off-policy evaluation on the past cycles says beats it; each candidate's true value is kept;
* ``oracle``: the platform's optimiser fed the simulator's true effects (:func:`sim.oracle.oracle_plan`).

:func:`bench_loop_value` (re-exported by ``bench/loop_value.py``) runs them, each in its own world.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from campaign_loop import pipeline
from campaign_loop.actions import CHANNEL_COST
from campaign_loop.config import Settings
from campaign_loop.dbt import run_dbt
from expectations.publish import PUBLISHED_SCHEMA
from ml import features, policy_choice, tracking
from ml.decide import CampaignPlan, DesignConfig, design_campaign, plan_from_choice

# Product code since the loop weighs them by off-policy evaluation (issue 24); re-exported for the benchmarks.
from ml.decide.candidates import (
    best_action_plan,
    measured_lift,
    propensity_best_offer_plan,
)
from ml.export import write_plan
from ml.score import recent_purchase_rate, score_customers, score_frame
from ml.train import train_cycle
from sim.oracle import (
    _effects,
    effects_at_start,
    evaluate_cycle,
    oracle_customers,
    oracle_plan,
    plan_value,
    uplift_ranking,
)

if TYPE_CHECKING:
    from pathlib import Path

POLICIES: tuple[str, ...] = ("random", "rfm", "propensity", "best_action", "propensity_best_offer", "rfm_best_offer",
                             "tlearner_logit", "tlearner_gbm", "platform", "platform_ope", "oracle")
# Best first; segments not listed come last.
RFM_ORDER: tuple[str, ...] = ("champions", "loyal", "potential_loyalist", "cant_lose", "at_risk", "new",
                              "hibernating", "prospect", "lost")
BASELINE_OFFER = "pct10"


def _allowed_channels(customers: pd.DataFrame, config: DesignConfig) -> np.ndarray:
    return np.column_stack([customers[f"consent_{c}"].fillna(False).to_numpy(bool) for c in config.channels])


def cheapest_channel_action(customers: pd.DataFrame, config: DesignConfig, offer: str) -> pd.Series:
    """``<offer>__<cheapest consented channel>`` per customer (NaN without consent)."""
    consent = _allowed_channels(customers, config)
    cost = np.array([CHANNEL_COST[c] for c in config.channels])
    best = np.where(consent, cost[None, :], np.inf).argmin(axis=1)
    names = np.array([f"{offer}__{c}" for c in config.channels], dtype=object)[best]
    return pd.Series(np.where(consent.any(axis=1), names, None), index=customers.index, dtype=object)


def random_plan(customers: pd.DataFrame, config: DesignConfig) -> CampaignPlan:
    """Random consenting customers, each a uniformly random allowed action, until the budget is spent."""
    rng = np.random.default_rng([config.seed, zlib.crc32(f"random:{config.cycle_id}".encode())])
    actions = config.actions
    consent = _allowed_channels(customers, config)
    allowed = consent[:, [config.channels.index(a.channel) for a in actions]]
    keys = np.where(allowed, rng.random(allowed.shape), -1.0)
    pick = keys.argmax(axis=1)
    names = np.array([a.name for a in actions], dtype=object)[pick]
    chosen = pd.Series(np.where(allowed.any(axis=1), names, None), index=customers.index, dtype=object)
    order = rng.permutation(len(customers))
    return plan_from_choice(customers.iloc[order], chosen.iloc[order], config)


def rfm_plan(customers: pd.DataFrame, config: DesignConfig, offer: str = BASELINE_OFFER) -> CampaignPlan:
    """Best RFM segment first (by monetary value within a segment), ``offer`` on the cheapest consented channel."""
    rank = customers["segment"].map({s: i for i, s in enumerate(RFM_ORDER)}).fillna(len(RFM_ORDER))
    value = customers["monetary_value"] if "monetary_value" in customers else customers["expected_spend"]
    key = pd.DataFrame({"rank": rank.to_numpy(), "value": -value.fillna(0).to_numpy(float),
                        "id": customers["customer_id"].astype(str).to_numpy()})
    order = np.lexsort((key["id"], key["value"], key["rank"]))
    chosen = cheapest_channel_action(customers, config, offer)
    return plan_from_choice(customers.iloc[order], chosen.iloc[order], config)


def propensity_plan(customers: pd.DataFrame, config: DesignConfig, offer: str = BASELINE_OFFER) -> CampaignPlan:
    """The likeliest buyers (highest ``p_buy``) first, ``offer`` on the cheapest consented channel."""
    key = pd.DataFrame({"p": -customers["p_buy"].fillna(0).to_numpy(float),
                        "id": customers["customer_id"].astype(str).to_numpy()})
    order = np.lexsort((key["id"], key["p"]))
    chosen = cheapest_channel_action(customers, config, offer)
    return plan_from_choice(customers.iloc[order], chosen.iloc[order], config)


BASELINES = {"random": random_plan, "rfm": rfm_plan, "propensity": propensity_plan}


# --------------------------------------------------------------------------------------------------
# Baselines that read the campaigns' measured results (issue 24): what a marketer does with an A/B report.


def rfm_best_offer_plan(customers: pd.DataFrame, segment_effects: pd.DataFrame, config: DesignConfig) -> CampaignPlan:
    """Per RFM segment, the offer of highest measured ``value_per_contact`` in it (``segment_effects``
    indexed by segment and offer), on the customer's cheapest consented channel; segments whose best
    offer lost money get nothing. The most valuable segments first, by monetary value within one."""
    effects = segment_effects[segment_effects.index.get_level_values("offer").isin(config.offers)]
    positive = effects[effects["value_per_contact"] > 0].reset_index()
    best = positive.sort_values("value_per_contact", ascending=False).drop_duplicates("segment").set_index("segment")
    segment = customers["segment"].astype(str)
    offer = segment.map(best["offer"])
    chosen = pd.Series(None, index=customers.index, dtype=object)
    for name in offer.dropna().unique():
        rows = offer == name
        chosen[rows] = cheapest_channel_action(customers[rows], config, str(name))
    value = customers["monetary_value"] if "monetary_value" in customers else customers["expected_spend"]
    key = pd.DataFrame({"worth": -segment.map(best["value_per_contact"]).fillna(-np.inf).to_numpy(float),
                        "value": -value.fillna(0).to_numpy(float), "id": customers["customer_id"].astype(str).to_numpy()})
    order = np.lexsort((key["id"], key["value"], key["worth"]))
    uplift = {f"uplift__{a.name}": 0.0 for a in config.actions}
    return plan_from_choice(customers.assign(**uplift).iloc[order], chosen.iloc[order], config)


TLEARNERS = ("logit", "gbm")


def _learner(kind: str, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logit":
        return make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(max_iter=2_000))
    if kind == "gbm":
        # Set once for a rare outcome (a few percent buy in a cycle) before any benchmark ran, not tuned on
        # one: the library's defaults fit a 5 % rate at 0.3-0.4 for a few outlying customers. Slow
        # learning, large leaves and early stopping on a held-out fifth keep the trees on the signal.
        return HistGradientBoostingClassifier(learning_rate=0.05, max_iter=300, max_leaf_nodes=15, min_samples_leaf=100,
                                              l2_regularization=1.0, early_stopping=True, validation_fraction=0.2,
                                              random_state=seed)
    raise ValueError(f"unknown learner {kind!r}; choose from {TLEARNERS}")


def _probability(model: Any, x: pd.DataFrame) -> np.ndarray:
    classes = list(model.classes_)
    if 1 not in classes:
        return np.zeros(len(x))
    return model.predict_proba(x)[:, classes.index(1)]


def _fits(rows: pd.DataFrame) -> bool:
    # Two of each outcome: the boosted trees' early stopping holds out a stratified fifth.
    counts = rows["is_converted"].value_counts()
    return len(counts) == 2 and int(counts.min()) >= 2


def tlearner_uplift(sends: pd.DataFrame, customers: pd.DataFrame, features: Sequence[str], actions: Sequence[str],
                    kind: str, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    """The two-model (T-) learner: a model of buying per action on its treated rows, one on every control
    row (a holdout is untreated whatever its campaign's action). Returns (P(buy | x) untreated,
    ``uplift__<action>`` = P(buy | x, action) - P(buy | x), NaN for an action whose treated rows hold fewer
    than two buyers or non-buyers: the optimiser then never picks it)."""
    features = list(features)
    control = sends[sends["treatment"] == 0]
    if not _fits(control) or (sends["treatment"] == 1).sum() == 0:
        raise ValueError("a T-learner needs buyers and non-buyers in both arms")
    m0 = _learner(kind, seed).fit(control[features], control["is_converted"].to_numpy())
    p0 = _probability(m0, customers[features])
    out = {}
    for name in actions:
        treated = sends[(sends["treatment"] == 1) & (sends["action"] == name)]
        if not _fits(treated):
            out[f"uplift__{name}"] = np.full(len(customers), np.nan)
            continue
        m1 = _learner(kind, seed).fit(treated[features], treated["is_converted"].to_numpy())
        out[f"uplift__{name}"] = _probability(m1, customers[features]) - p0
    if all(np.isnan(u).all() for u in out.values()):
        raise ValueError("a T-learner needs buyers and non-buyers in both arms: no action's treated rows have both")
    return p0, pd.DataFrame(out, index=customers.index)


def tlearner_plan(customers: pd.DataFrame, sends: pd.DataFrame, features: Sequence[str], config: DesignConfig,
                  kind: str) -> CampaignPlan:
    """The platform's optimiser (:func:`ml.decide.design_campaign`, epsilon exploration) on a T-learner's
    uplift, its untreated purchase probability as ``p_buy``."""
    actions = [a.name for a in config.actions]
    p0, uplift = tlearner_uplift(sends, customers, features, actions, kind, config.seed)
    scored = customers.drop(columns=[c for c in customers.columns if c.startswith(("uplift__", "uplift_sd__"))])
    scored = pd.concat([scored.assign(p_buy=p0), uplift], axis=1)
    return design_campaign(scored, replace(config, exploration="epsilon"))


def _with(settings: Settings, **update: Any) -> Settings:
    return Settings(**{**settings.model_dump(), **update})


def _build_marts(settings: Settings, cycle: int) -> None:
    """ingest -> dbt build -> publish (the pipeline's steps; the validation gates are not run here)."""
    pipeline.ingest(settings, cycle)
    result = run_dbt(settings, "build")
    if result.returncode != 0:
        raise RuntimeError(f"dbt build failed in {settings.root}:\n{result.stdout[-3000:]}")
    pipeline.publish(settings, cycle, None)


def _score_without_models(settings: Settings) -> pd.DataFrame:
    frame = features.scoring_frame(settings.warehouse_path, schema=PUBLISHED_SCHEMA)
    out = score_frame(frame, {}, fallback_rate=lambda: recent_purchase_rate(settings, PUBLISHED_SCHEMA))
    return out.assign(monetary_value=frame["monetary_value"].to_numpy()) if "monetary_value" in frame else out


def design_for_policy(policy: str, settings: Settings, cycle: int) -> dict[str, Any]:
    """Design and export the plan ``policy`` executes in ``cycle + 1`` from the data of cycles <= ``cycle``."""
    next_id = settings.cycle_key(cycle + 1)
    # The baselines choose without the retained value (value_horizon_weeks, the platform's option), and some of
    # their inputs carry no churn or CLV scores to compute it from.
    config = DesignConfig.from_settings(settings, next_id, value_horizon_weeks=0)
    info: dict[str, Any] = {}
    if policy in ("platform", "platform_ope"):
        tracking.configure(settings)
        report = pipeline.train(settings, cycle, {})
        info["uplift"] = report["models"]["uplift"]["status"] if "models" in report else None
        summary = pipeline.design(_with(settings, policy_choice=policy == "platform_ope"), cycle)["summary"]
        info.update(treated_planned=summary["treatment"], explored=summary["explored"])
        if policy == "platform_ope":
            info.update(_policy_choice_info(settings, summary["policy_choice"], config))
        return info
    if policy in ("oracle", "random"):
        effects, spend = effects_at_start(settings, cycle + 1)
        customers = oracle_customers(settings, cycle + 1, effects, spend)
        if policy == "oracle":
            plan = oracle_plan(settings, cycle + 1, customers)
        else:
            # Random needs no model: consent (which the retailer knows exactly) and, for the budget's
            # expected costs, baseline purchase probability and spend with zero uplift.
            uplift_columns = [c for c in customers.columns if c.startswith("uplift__")]
            plan = random_plan(customers.assign(**{c: 0.0 for c in uplift_columns}), config)
    elif policy == "rfm":
        plan = rfm_plan(_score_without_models(settings), config)
    elif policy in MEASURING:
        plan, measured = _measuring_plan(policy, settings, config)
        info.update(measured)
    elif policy == "propensity":
        tracking.configure(settings)
        report = train_cycle(settings, next_id, {}, mode="auto", schema=PUBLISHED_SCHEMA, models=("propensity",))
        info["propensity"] = report.models["propensity"].status
        plan = propensity_plan(score_customers(settings, schema=PUBLISHED_SCHEMA), config)
    else:
        raise ValueError(f"unknown policy {policy!r}; choose from {POLICIES}")
    write_plan(plan, settings)
    info.update(treated_planned=plan.summary["treatment"])
    return info


def _policy_choice_info(settings: Settings, choice: dict[str, Any], config: DesignConfig) -> dict[str, Any]:
    """The evaluation's choice and estimates, and the candidates' treated rows (``_candidates``, popped by
    :func:`run_policy` to value them by the truth once the cycle has run). The candidates are rebuilt from the
    same inputs, the design re-designed without the pipeline's send hours and caps (they do not move its choice
    in worlds without send-hour preference or a per-customer cap)."""
    customers = score_customers(settings, schema=PUBLISHED_SCHEMA)
    sends = features.uplift_frame(settings.warehouse_path, schema=PUBLISHED_SCHEMA)
    plans = policy_choice.candidate_plans(customers, sends, design_campaign(customers, config), config)
    treated = {name: p.rows[p.rows["arm"] == "treatment"] for name, p in plans.items()}
    # The estimates are over each logged cycle's planned customers, so the truth they are held to is too.
    supports = [set(pd.read_parquet(settings.plan_path(c), columns=["customer_id"])["customer_id"])
                for c in choice["cycles"]] or [None]
    info: dict[str, Any] = {"chosen": choice["chosen"], "ope_cycles": choice["cycles"],
                            "_candidates": {name: [_treated_in(rows, s) for s in supports]
                                            for name, rows in treated.items()}}
    for name, e in choice["estimates"].items():
        info[f"estimate_{name}"] = [e["value"], e["low"], e["high"]]
    for name, d in choice["versus_incumbent"].items():
        info[f"minus_platform_{name}"] = [d["value"], d["low"], d["high"]]
    return info


def _treated_in(rows: pd.DataFrame, support: set[Any] | None) -> tuple[pd.Series, pd.Series]:
    rows = rows if support is None else rows[rows["customer_id"].isin(support)]
    return rows["member_id"], rows["offer"] + "__" + rows["channel"]


NEEDS_MARTS = {"random": False, "oracle": False, **{p: True for p in POLICIES if p not in ("random", "oracle")}}
# The baselines that read the campaigns' measured results.
MEASURING = ("best_action", "propensity_best_offer", "rfm_best_offer", "tlearner_logit", "tlearner_gbm")


def _sends(settings: Settings) -> pd.DataFrame:
    """Every randomised assignment the warehouse has measured, with its RFM segment at the campaign's start."""
    sends = features.uplift_frame(settings.warehouse_path, schema=PUBLISHED_SCHEMA)
    segments = features.read(settings.warehouse_path, "fct_customer_features",
                             ["customer_id", "as_of_date", "rfm_segment"], PUBLISHED_SCHEMA)
    segments = segments.rename(columns={"rfm_segment": "segment"})
    segments["as_of_date"] = pd.to_datetime(segments["as_of_date"]).dt.date
    sends = sends.merge(segments, on=["customer_id", "as_of_date"], how="left")
    return sends.assign(segment=sends["segment"].astype(str), offer=sends["action"].str.split("__").str[0])


def _measuring_plan(policy: str, settings: Settings, config: DesignConfig) -> tuple[CampaignPlan, dict[str, Any]]:
    sends = _sends(settings)
    info: dict[str, Any] = {"assignments": len(sends)}
    if policy == "best_action":
        effects = measured_lift(sends)
        plan = best_action_plan(_score_without_models(settings), effects, config)
        info["best"] = str(effects["value_per_contact"].idxmax()) if len(effects) else None
    elif policy == "propensity_best_offer":
        tracking.configure(settings)
        report = train_cycle(settings, config.cycle_id, {}, mode="auto", schema=PUBLISHED_SCHEMA, models=("propensity",))
        info["propensity"] = report.models["propensity"].status
        customers = score_customers(settings, schema=PUBLISHED_SCHEMA)
        plan = propensity_best_offer_plan(customers, measured_lift(sends), config)
    elif policy == "rfm_best_offer":
        plan = rfm_best_offer_plan(_score_without_models(settings),
                                   measured_lift(sends, by=("segment", "offer"), newest_only=False), config)
    else:
        frame = features.scoring_frame(settings.warehouse_path, schema=PUBLISHED_SCHEMA)
        scored = _score_without_models(settings)
        # The scores keep the decision columns; the learners read the features beside them.
        customers = scored.merge(frame[["customer_id", *(c for c in features.FEATURES if c not in scored)]],
                                 on="customer_id", how="left")
        try:
            plan = tlearner_plan(customers, sends, features.FEATURES, config, policy.removeprefix("tlearner_"))
        except ValueError as error:  # too few buyers in an arm to fit: no campaign this cycle, said so
            info["error"] = str(error)
            plan = plan_from_choice(customers.assign(**{f"uplift__{a.name}": 0.0 for a in config.actions}),
                                    pd.Series(None, index=customers.index, dtype=object), config)
    return plan, info


def run_policy(base: Settings, policy: str, cycles: int, out: Path, log: Any = print) -> list[dict[str, Any]]:
    """``policy`` over designed cycles 1..``cycles`` in its own copy (``out/<policy>``) of ``base``'s world."""
    import shutil
    import time

    world = _with(base, home=out / policy)
    if world.root.exists():
        shutil.rmtree(world.root)
    shutil.copytree(base.root, world.root)
    rows: list[dict[str, Any]] = []
    for cycle in range(cycles):
        t0 = time.perf_counter()
        info = design_for_policy(policy, world, cycle)
        candidates = info.pop("_candidates", {})
        pipeline.simulate(world, cycle + 1)
        value = evaluate_cycle(world, cycle + 1)
        if candidates:
            truth = _effects(world, cycle + 1)
            # Per candidate, the mean over the logged cycles' supports, as the pooled estimate is.
            info.update({f"true_{name}": round(float(np.mean([plan_value(truth, *part) for part in parts])), 2)
                         for name, parts in candidates.items()})
        ranking = uplift_ranking(world, cycle + 1)
        if NEEDS_MARTS[policy] and cycle + 1 < cycles:
            _build_marts(world, cycle + 1)
        row = {
            "policy": policy, "cycle": cycle + 1, "cycle_id": value.cycle_id,
            "incremental_profit": round(value.incremental_profit, 2),
            "oracle_incremental_profit": round(value.oracle_incremental_profit, 2),
            "ratio_to_oracle": None if value.ratio_to_oracle is None else round(value.ratio_to_oracle, 4),
            "treated": value.treated, "oracle_treated": value.oracle_treated,
            # Among the customers the plan targeted: does its expected uplift order them as the truth does?
            "uplift_spearman_true": None if ranking is None else round(ranking.spearman_true, 4),
            "seconds": round(time.perf_counter() - t0, 1), **{f"info_{k}": v for k, v in info.items()},
        }
        rows.append(row)
        log(f"{policy:>10} cycle {cycle + 1}: profit {row['incremental_profit']:>10,.1f}  oracle "
            f"{row['oracle_incremental_profit']:>10,.1f}  ratio {row['ratio_to_oracle']}  treated {row['treated']:,}  "
            f"{row['seconds']:.0f} s  {info}")
    return rows


def _run_policy_in_child(base: dict[str, Any], policy: str, cycles: int, out: str) -> list[dict[str, Any]]:
    import sys
    from pathlib import Path

    def log(line: str) -> None:  # unbuffered, so the parent's console shows each cycle as it ends
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    return run_policy(Settings(**base), policy, cycles, Path(out), log=log)


# Slowest first, so that two workers finish close together (the platform trains four models a cycle).
_LONGEST_FIRST = ("platform_ope", "platform", "propensity", "propensity_best_offer", "tlearner_gbm", "tlearner_logit", "rfm", "rfm_best_offer",
                  "best_action", "oracle", "random")


def bench_loop_value(
    settings: Settings,
    cycles: int,
    json_path: Path | str | None = None,
    policies: Sequence[str] = POLICIES,
    *,
    out_dir: Path | str | None = None,
    budget_per_customer: float | None = 0.05,
    jobs: int = 1,
    log: Any = print,
) -> list[dict[str, Any]]:
    """Run ``policies`` side by side over ``cycles`` designed cycles (1..cycles), each in its own world.

    One world (``settings.seed``, ``settings.customers``): cycle 0 (business as usual) is simulated and
    loaded once under ``out_dir/_cycle0`` and copied to ``out_dir/<policy>``; from then on each policy
    designs the plan of cycle k + 1 from its own world's data of cycles <= k, the simulator executes it,
    and :func:`sim.oracle.evaluate_cycle` values it by the truth against the oracle plan of that
    world's state. ``budget_per_customer`` sets the cycle budget to that many currency units per
    customer (0.05 binds at the simulated retailer's scale: the default ``Settings.budget`` does not,
    and a budget that never binds makes every ranking policy contact everyone); None keeps
    ``settings.budget``. ``jobs`` > 1 runs that many policies at once in child processes (the worlds
    share nothing: each has its own warehouse, landing folders and MLflow store). Returns (and writes
    to ``json_path``) one row per policy and cycle, in ``policies`` order: ``policy, cycle, cycle_id,
    incremental_profit, oracle_incremental_profit, ratio_to_oracle, treated, seconds``.
    """
    import json
    import shutil
    import time
    from pathlib import Path

    if unknown := [p for p in policies if p not in POLICIES]:
        raise ValueError(f"unknown policies {unknown}; choose from {POLICIES}")
    if cycles < 1:
        raise ValueError("cycles must be >= 1")
    if jobs < 1:
        raise ValueError("jobs must be >= 1")
    out = Path(out_dir) if out_dir is not None else settings.root / "bench" / "loop_value"
    out.mkdir(parents=True, exist_ok=True)
    update: dict[str, Any] = {}
    if budget_per_customer is not None:
        update["budget"] = budget_per_customer * settings.customers
    base = _with(settings, home=out / "_cycle0", **update)
    started = time.perf_counter()
    if base.root.exists():
        shutil.rmtree(base.root)
    pipeline.simulate(base, 0)
    if any(NEEDS_MARTS[p] for p in policies):
        _build_marts(base, 0)
    log(f"cycle 0 (business as usual) simulated and loaded in {time.perf_counter() - started:.0f} s: {base.root}")
    by_policy: dict[str, list[dict[str, Any]]] = {}

    def finished(policy: str, rows: list[dict[str, Any]]) -> None:
        by_policy[policy] = rows
        if json_path is not None:
            done = [row for p in policies for row in by_policy.get(p, [])]
            Path(json_path).parent.mkdir(parents=True, exist_ok=True)
            Path(json_path).write_text(json.dumps(done, indent=2, default=str))

    if jobs == 1:
        for policy in policies:
            finished(policy, run_policy(base, policy, cycles, out, log))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ordered = sorted(policies, key=_LONGEST_FIRST.index)
        # spawn: a forked child would inherit this process's DuckDB and MLflow handles.
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_run_policy_in_child, base.model_dump(), p, cycles, str(out)): p for p in ordered}
            for future in as_completed(futures):
                finished(futures[future], future.result())
    rows = [row for p in policies for row in by_policy[p]]
    log(table(rows))
    log(f"total {time.perf_counter() - started:.0f} s; worlds under {out}")
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown table: one row per cycle, incremental profit (ratio to oracle) per policy."""
    frame = pd.DataFrame(rows)
    if frame.empty:
        return "(no rows)"
    policies = list(dict.fromkeys(frame["policy"]))
    lines = ["| cycle | " + " | ".join(policies) + " |", "|---:|" + "---:|" * len(policies)]
    for cycle, part in frame.groupby("cycle"):
        cells = []
        for p in policies:
            r = part[part["policy"] == p]
            if r.empty:
                cells.append("")
                continue
            ratio = r["ratio_to_oracle"].iloc[0]
            cells.append(f"{r['incremental_profit'].iloc[0]:,.1f} ({'n/a' if ratio is None or pd.isna(ratio) else f'{ratio:.2f}'})")
        lines.append(f"| {cycle} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
