"""The loop's policy choice (ml.policy_choice): off-policy evaluation on synthetic logs whose truth is known
switches from the design only when a challenger is clearly better, and the plan records why."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from ml import policy_choice
from ml.decide import CampaignPlan, DesignConfig, design_campaign
from ml.export import _policy_choice_lines, summary_markdown
from tests.ml.test_policies_measured import _customers

CONFIG = DesignConfig(cycle_id="2026-02-02", budget=1e6, seed=1)
GOOD, PLAIN = "pct20__email", "message__email"


def _plan(customers: list[str], action: str) -> CampaignPlan:
    offer, channel = action.split("__")
    rows = pd.DataFrame({"customer_id": customers, "member_id": customers, "offer": offer, "channel": channel,
                         "arm": "treatment", "cost_per_contact": 0.01})
    return CampaignPlan(cycle_id="2026-02-02", rows=rows, summary={})


def _logged(n: int, effects: dict[str, float], seed: int) -> pd.DataFrame:
    """One logged cycle: each customer gets GOOD or PLAIN at random (1/2), treated with probability 0.8;
    margin is noise (sd 10) plus the action's effect when treated."""
    rng = np.random.default_rng(seed)
    action = rng.choice([GOOD, PLAIN], n)
    treatment = (rng.random(n) < 0.8).astype(int)
    effect = np.array([effects[a] for a in action])
    return pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(n)], "action": action, "treatment": treatment,
        "assignment_probability": 0.5 * np.where(treatment == 1, 0.8, 0.2),
        "margin": 20 + rng.normal(0, 10, n) + treatment * effect,
    })


def _candidates(n: int) -> dict[str, CampaignPlan]:
    ids = [f"c{i}" for i in range(n)]
    return {"platform": _plan(ids, PLAIN), "best_action": _plan(ids, GOOD)}


def test_a_challenger_that_is_clearly_better_replaces_the_design() -> None:
    logs = {"2026-01-26": (_logged(4_000, {GOOD: 5.0, PLAIN: 0.0}, seed=1), None)}
    evaluation = policy_choice.evaluate(logs, _candidates(4_000))
    assert evaluation.chosen == "best_action"
    d = evaluation.versus["best_action"]
    assert d.low > 0 and d.value == pytest.approx(4_000 * 5.0, rel=0.25)
    assert evaluation.cycles == {"2026-01-26": "snips"}  # no kept outcome model: self-normalised IPS
    assert "best_action beats platform" in evaluation.reason


def test_a_difference_that_is_noise_keeps_the_design() -> None:
    logs = {"2026-01-26": (_logged(4_000, {GOOD: 1.0, PLAIN: 1.0}, seed=3), None)}
    evaluation = policy_choice.evaluate(logs, _candidates(4_000))
    assert evaluation.chosen == "platform"
    d = evaluation.versus["best_action"]
    assert d.low <= 0 <= d.high
    assert evaluation.reason.startswith("no challenger beats platform at 95%")


def test_noise_switches_about_as_rarely_as_the_one_sided_level_says() -> None:
    # Lower bound above 0 at 95 %: a challenger no better than the design wins about 1 time in 40.
    switched = sum(policy_choice.evaluate({"c": (_logged(2_000, {GOOD: 1.0, PLAIN: 1.0}, seed=100 + s), None)},
                                          _candidates(2_000)).chosen != "platform" for s in range(40))
    assert switched <= 4


def test_cycles_pool_and_a_kept_model_makes_the_estimate_doubly_robust() -> None:
    n = 2_000
    model = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "predicted_untreated": 20.0, GOOD: 5.0,
                          PLAIN: 0.0})
    logs = {"2026-01-26": (_logged(n, {GOOD: 5.0, PLAIN: 0.0}, seed=5), model),
            "2026-01-19": (_logged(n, {GOOD: 5.0, PLAIN: 0.0}, seed=6), None)}
    evaluation = policy_choice.evaluate(logs, _candidates(n))
    assert evaluation.cycles == {"2026-01-26": "dr", "2026-01-19": "snips"}
    one = policy_choice.evaluate(dict(list(logs.items())[:1]), _candidates(n))
    # Two independent cycles: the pooled interval is narrower than either cycle's alone.
    assert evaluation.versus["best_action"].se < one.versus["best_action"].se * 1.2
    assert evaluation.estimates["best_action"].method == "dr+snips"
    assert evaluation.chosen == "best_action"


def test_without_logs_the_design_stays_and_says_why() -> None:
    evaluation = policy_choice.evaluate({}, _candidates(10))
    assert evaluation.chosen == "platform" and "no logged cycle" in evaluation.reason
    assert evaluation.as_dict()["estimates"] == {}


def test_logged_cycles_are_the_platforms_newest_with_both_arms_one_row_a_customer() -> None:
    def rows(as_of: date, ids: list[str], treatment: list[int], p: float = 0.4) -> pd.DataFrame:
        return pd.DataFrame({"as_of_date": as_of, "customer_id": ids, "action": GOOD, "treatment": treatment,
                             "assignment_probability": p, "margin": 1.0})

    sends = pd.concat([
        rows(date(2026, 1, 5), ["a", "b"], [1, 0], p=0.5),  # business as usual: no plan file, left out
        rows(date(2026, 1, 12), ["a", "b", "c"], [1, 0, 1]),
        rows(date(2026, 1, 19), ["a", "b"], [1, 1]),  # one arm only: nothing to compare
        rows(date(2026, 1, 26), ["a", "a", "b", "c"], [1, 0, 0, 1]),  # "a" twice: dropped
    ])
    logs = policy_choice.logged_cycles(sends, ["2026-01-12", "2026-01-19", "2026-01-26"])
    assert list(logs) == ["2026-01-26", "2026-01-12"]
    assert list(logs["2026-01-26"]["customer_id"]) == ["b", "c"]
    assert list(policy_choice.logged_cycles(sends, ["2026-01-12", "2026-01-26"], max_cycles=1)) == ["2026-01-26"]


def _uniform_log(customers: pd.DataFrame, config: DesignConfig, best: str, seed: int) -> pd.DataFrame:
    """A logged cycle on the design's customers: each gets a uniformly random action of the catalogue and the
    treatment arm with probability 0.8; only ``best`` has an effect (a large one)."""
    rng = np.random.default_rng(seed)
    names = [a.name for a in config.actions]
    n = len(customers)
    action = rng.choice(names, n)
    treatment = (rng.random(n) < 0.8).astype(int)
    return pd.DataFrame({
        "customer_id": customers["customer_id"].to_numpy(), "action": action, "treatment": treatment,
        "assignment_probability": np.where(treatment == 1, 0.8, 0.2) / len(names),
        "margin": rng.normal(10, 5, n) + 40.0 * treatment * (action == best),
    })


def test_the_design_path_records_the_evaluation_and_switches_on_clear_evidence() -> None:
    customers = _customers(3_000, seed=7)
    design = design_campaign(customers, CONFIG)
    sends = pd.DataFrame({"as_of_date": date(2026, 1, 26), "action": [GOOD] * 40 + [PLAIN] * 40,
                          "treatment": ([1] * 20 + [0] * 20) * 2, "is_converted": 0,
                          "margin": [30.0] * 20 + [1.0] * 20 + [1.0] * 40})
    logs = {"2026-01-26": (_uniform_log(customers, CONFIG, GOOD, seed=8), policy_choice.outcome_model(customers, CONFIG))}
    plan = policy_choice.choose_plan(customers, sends, design, CONFIG, logs)
    choice = plan.summary["policy_choice"]
    assert set(choice["estimates"]) == {"platform", "best_action", "propensity_best_offer"}
    assert choice["cycles"] == {"2026-01-26": "dr"}
    assert choice["chosen"] in ("best_action", "propensity_best_offer")  # both send GOOD by the measured lift
    assert plan.summary["method"].startswith(f"policy choice: {choice['chosen']}")
    treated = plan.rows[plan.rows["arm"] == "treatment"]
    assert set(treated["offer"] + "__" + treated["channel"]) == {GOOD}
    markdown = summary_markdown(plan)
    assert f"Policy choice (off-policy evaluation on cycles 2026-01-26 (dr)): **{choice['chosen']}**" in markdown
    assert "| platform |" in markdown


def test_the_design_stays_when_the_logs_show_no_difference() -> None:
    customers = _customers(3_000, seed=7)
    design = design_campaign(customers, CONFIG)
    sends = pd.DataFrame({"as_of_date": date(2026, 1, 26), "action": [GOOD] * 40, "treatment": [1] * 20 + [0] * 20,
                          "is_converted": 0, "margin": [30.0] * 20 + [1.0] * 20})
    logs = {"2026-01-26": (_uniform_log(customers, CONFIG, "none", seed=9), None)}
    plan = policy_choice.choose_plan(customers, sends, design, CONFIG, logs)
    assert plan.summary["policy_choice"]["chosen"] == "platform"
    assert plan.rows is design.rows and "method" not in plan.summary or plan.summary["method"] == design.summary["method"]


def test_the_cycle_report_shows_the_choice_and_each_candidates_interval() -> None:
    from campaign_loop.cycle_report.page import _plan_section

    logs = {"2026-01-26": (_logged(2_000, {GOOD: 5.0, PLAIN: 0.0}, seed=1), None)}
    choice = policy_choice.evaluate(logs, _candidates(2_000)).as_dict()
    page = _plan_section({"policy_choice": choice}, "2026-02-02")
    assert "<h3>Policy choice: best_action</h3>" in page and "2026-01-26 (snips)" in page
    section = page[page.index("<h3>Policy choice"):]
    assert section.count("<tr>") == 1 + 2  # header, platform, best_action
    assert _plan_section({}, "2026-02-02").count("Policy choice") == 0  # policy_choice off: nothing shown


def test_a_candidate_the_logs_do_not_cover_reads_as_such_in_the_summary() -> None:
    logged = _logged(200, {GOOD: 0.0, PLAIN: 0.0}, seed=1)
    logged = logged[logged["action"] == PLAIN]  # nobody was planned GOOD: best_action has no matched row
    evaluation = policy_choice.evaluate({"2026-01-26": (logged, None)}, _candidates(200))
    assert evaluation.chosen == "platform"
    choice = evaluation.as_dict()
    assert choice["estimates"]["best_action"]["value"] is None  # SNIPS without a matched row: no estimate
    assert "| best_action | 200 | n/a (an arm without a matched row) |" in "\n".join(_policy_choice_lines(choice))


def test_the_pipelines_design_step_reads_the_platforms_logs_and_keeps_its_model(tmp_path, monkeypatch) -> None:
    from dataclasses import replace

    from campaign_loop import pipeline
    from campaign_loop.config import Settings

    settings = Settings(home=tmp_path, policy_choice=True)
    customers = _customers(3_000, seed=7)
    logged_config = replace(CONFIG, cycle_id="2026-01-26")
    # The cycle before was planned by the platform (its plan file) with the setting on (its kept model).
    settings.plan_path("2026-01-26").parent.mkdir(parents=True)
    design_campaign(customers, logged_config).rows.to_parquet(settings.plan_path("2026-01-26"))
    policy_choice.write_predictions(customers, logged_config, settings)
    log = _uniform_log(customers, CONFIG, GOOD, seed=8)
    sends = log.assign(as_of_date=date(2026, 1, 26), is_converted=0)
    bau = sends.assign(as_of_date=date(2026, 1, 19))  # business as usual: no plan file, not evaluated on
    monkeypatch.setattr("ml.features.uplift_frame", lambda *args, **kwargs: pd.concat([bau, sends]))

    plan = pipeline._choose_policy(settings, customers, design_campaign(customers, CONFIG), CONFIG)
    choice = plan.summary["policy_choice"]
    assert choice["cycles"] == {"2026-01-26": "dr"}
    assert choice["chosen"] != "platform"
    assert policy_choice.predictions_path(settings, "2026-02-02").is_file()  # for the next cycle's evaluation


def test_an_optimistic_model_earns_a_challenger_nothing_outside_the_logs() -> None:
    # The kept model believes GOOD earns 50 a contact; the logs (c0..c1999) say it earns nothing. A challenger
    # sending GOOD to 2,000 more customers the cycle never planned must not be credited the model's belief.
    model = pd.DataFrame({"customer_id": [f"c{i}" for i in range(4_000)], "predicted_untreated": 20.0, GOOD: 50.0,
                          PLAIN: 0.0})
    logs = {"2026-01-26": (_logged(2_000, {GOOD: 0.0, PLAIN: 0.0}, seed=11), model)}
    plans = {"platform": _plan([f"c{i}" for i in range(2_000)], PLAIN),
             "best_action": _plan([f"c{i}" for i in range(4_000)], GOOD)}
    evaluation = policy_choice.evaluate(logs, plans)
    assert evaluation.chosen == "platform"
    assert evaluation.estimates["best_action"].customers == 2_000  # the logged cycle's support only
