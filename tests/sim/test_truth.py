"""The ground truth: reconciliation with the landing files, behaviour, calibration, plan execution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from campaign_loop.config import CHANNELS, Settings
from sim import simulate_period
from tests.sim.conftest import run_cycles


def _cents(s: pd.Series) -> int:
    return int((s.astype(float) * 100).round().sum())


def test_given_clean_files_when_summing_amounts_then_truth_revenue_reconciles_to_the_cent(clean_world) -> None:
    settings, _ = clean_world
    for day in ("2026-01-05", "2026-01-12"):
        truth = pd.read_parquet(settings.truth_dir / "orders" / f"{day}.parquet")
        orders = pd.read_csv(settings.landing_dir / "orders" / f"{day}.csv", dtype=str)
        receipts = pd.read_csv(settings.landing_dir / "pos_receipts" / f"{day}.csv", dtype=str)
        assert _cents(orders["total_amount"]) + _cents(receipts["total_amount"]) == int(truth["total_cents"].sum())
        assert len(orders) + len(receipts) == len(truth)


def test_given_dirty_files_then_every_landed_order_is_a_truth_order_and_dirt_drops_few(dirty_world) -> None:
    settings, _ = dirty_world
    truth = pd.read_parquet(settings.truth_dir / "orders" / "2026-01-12.parquet")
    orders = pd.read_csv(settings.landing_dir / "orders" / "2026-01-12.csv", dtype=str, on_bad_lines="skip")
    online = truth[truth["channel"] == "online"]
    landed = set(orders["order_id"].dropna())
    assert set(online["order_id"]) >= landed - {np.nan}
    assert len(set(online["order_id"]) - landed) < 0.05 * len(online)  # only rows dirt damaged


def test_given_lines_when_summing_then_order_totals_match(clean_world) -> None:
    settings, _ = clean_world
    orders = pd.read_csv(settings.landing_dir / "orders" / "2026-01-12.csv", dtype=str).set_index("order_id")
    lines = pd.read_csv(settings.landing_dir / "order_lines" / "2026-01-12.csv", dtype=str)
    net = (lines["quantity"].astype(int) * (lines["unit_price"].astype(float) * 100).round()
           - (lines["discount_amount"].astype(float) * 100).round()).groupby(lines["order_id"]).sum()
    expected = ((orders["total_amount"].astype(float) - orders["shipping_amount"].astype(float)) * 100).round()
    assert (net.reindex(expected.index) == expected).all()


def test_given_bau_when_contacting_then_consent_is_never_violated(clean_world) -> None:
    settings, summaries = clean_world
    assert all(s.consent_violations == 0 for s in summaries)
    effects = pd.read_parquet(settings.truth_dir / "effects" / "2026-01-12.parquet")
    sends = pd.read_csv(settings.landing_dir / "campaign_sends" / "2026-01-12.csv", dtype=str)
    campaigns = pd.read_csv(settings.landing_dir / "campaigns" / "2026-01-12.csv", dtype=str)
    sent = sends[sends["sent_at"].notna()].merge(campaigns[["campaign_id", "channel"]], on="campaign_id")
    consent = effects.set_index("member_id")
    ok = [consent.at[m, f"consent_{c}"] for m, c in zip(sent["member_id"], sent["channel"], strict=True)]
    assert len(sent) > 0 and all(ok)


def test_given_a_plan_contacting_opted_out_members_then_violations_are_counted_and_not_sent(tmp_path: Path) -> None:
    settings, _ = run_cycles(tmp_path, cycles=1, customers=1_000, dirt=0.0)
    effects = pd.read_parquet(settings.truth_dir / "effects" / "2026-01-05.parquet")
    opted_out = effects[effects["member_id"].notna() & ~effects["consent_sms"]]["member_id"].head(20)
    plan = pd.DataFrame({"member_id": opted_out, "campaign_id": "c-bad", "channel": "sms", "offer_type": "none",
                         "offer_value": 0.0, "arm": "treatment", "assignment_probability": 1.0,
                         "cost_per_contact": 0.03})
    summary = simulate_period(settings, 1, plan)
    assert summary.consent_violations == len(opted_out)
    sends = pd.read_csv(settings.landing_dir / "campaign_sends" / "2026-01-12.csv", dtype=str)
    assert sends["sent_at"].isna().all()
    assert not (settings.landing_dir / "campaign_events" / "2026-01-12.csv").exists()


def test_given_history_when_counting_purchases_then_repeat_buying_is_bg_nbd_like(clean_world) -> None:
    settings, summaries = clean_world
    truth = pd.read_parquet(settings.truth_dir / "orders" / "2026-01-05.parquet")
    history = truth[truth["ordered_at"] < pd.Timestamp("2026-01-05", tz="UTC")]
    per_person = history.groupby("person_id").size()
    buyers_share = len(per_person) / settings.customers
    assert 0.35 < buyers_share < 0.9  # many people did not buy in a year
    assert 0.2 < (per_person >= 2).mean() < 0.8  # a good share buys again
    assert per_person.max() >= 8  # and a heavy tail of frequent buyers
    assert 50 < history["total_amount"].mean() < 90  # average order of a few tens
    effects = pd.read_parquet(settings.truth_dir / "effects" / "2026-01-12.parquet")
    alive = effects[effects["alive"]]
    assert 0.45 < len(alive) / len(effects) < 0.95
    assert 0.01 < alive["baseline_probability"].mean() < 0.08  # weekly purchase probability: a few percent


def test_given_effects_when_averaging_then_uplifts_have_realistic_magnitudes(clean_world) -> None:
    settings, _ = clean_world
    effects = pd.read_parquet(settings.truth_dir / "effects" / "2026-01-12.parquet")
    contactable = effects[effects["member_id"].notna()]
    message = contactable["uplift__message__email"].mean()
    assert 0.0005 < message < 0.01  # a fraction of a percentage point
    assert contactable["uplift__pct20__email"].mean() > message
    by_class = contactable.groupby("response_class")["uplift__pct10__email"].mean()
    assert by_class["persuadable"] > 0.005
    assert by_class["sleeping_dog"] < 0
    assert by_class["sure_thing"] == 0 and by_class["lost_cause"] == 0
    sure = contactable[(contactable["response_class"] == "sure_thing") & contactable["alive"]]
    assert (sure["incremental_profit__pct20__email"] < 0).all()  # a discount only gives margin away


def test_given_outcomes_when_reading_then_potential_outcomes_are_consistent(clean_world) -> None:
    settings, _ = clean_world
    outcomes = pd.read_parquet(settings.truth_dir / "outcomes" / "2026-01-12.parquet")
    treated = outcomes["arm"] == "treatment"
    assert (outcomes.loc[~treated, "purchased"] == outcomes.loc[~treated, "purchased_if_untreated"]).all()
    assert (outcomes.loc[treated, "purchased"] == outcomes.loc[treated, "purchased_if_treated"]).all()
    assert ((outcomes["revenue"] > 0) == outcomes["purchased"]).all()
    orders = pd.read_parquet(settings.truth_dir / "orders" / "2026-01-12.parquet")
    assert round(outcomes["revenue"].sum(), 2) == round(orders["total_cents"].sum() / 100, 2)


@pytest.mark.slow
def test_given_a_plan_when_treating_persuadables_then_they_buy_more_than_control(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, customers=20_000, dirt=0.0, history_weeks=8)
    simulate_period(settings, 0)
    effects = pd.read_parquet(settings.truth_dir / "effects" / "2026-01-05.parquet")
    # Consent as the platform knows it: the latest landed change per member and channel.
    consents = pd.read_csv(settings.landing_dir / "consents" / "2026-01-05.csv", dtype=str)
    email = consents[consents["channel"] == "email"].sort_values("changed_at").groupby("member_id")["status"].last()
    opted_in = set(email[email == "opt_in"].index)
    target = effects[(effects["response_class"] == "persuadable") & effects["alive"] & effects["member_id"].isin(opted_in)]
    arm = np.where(np.random.default_rng(0).random(len(target)) < 0.5, "treatment", "control")
    plan = pd.DataFrame({"member_id": target["member_id"], "campaign_id": "c-test", "channel": "email",
                         "offer_type": "percent_off", "offer_value": 20.0, "arm": arm,
                         "assignment_probability": 0.5, "cost_per_contact": 0.01})
    summary = simulate_period(settings, 1, plan)
    assert summary.consent_violations == 0
    out = pd.read_parquet(settings.truth_dir / "outcomes" / "2026-01-12.parquet")
    out = out[out["campaign_id"] == "c-test"]
    rate = out.groupby("arm")["purchased"].mean()
    assert rate["treatment"] > rate["control"]
    # Truth knows both potential outcomes: the true effect equals the expected uplift on average.
    true_effect = (out["purchased_if_treated"].astype(int) - out["purchased_if_untreated"].astype(int)).mean()
    assert true_effect > 0.005
    redemptions = pd.read_csv(settings.landing_dir / "coupon_redemptions" / "2026-01-12.csv", dtype=str)
    assert set(redemptions["campaign_id"]) == {"c-test"}


def test_given_identities_when_reading_then_every_person_has_cookies_and_some_devices_are_shared(clean_world) -> None:
    settings, summaries = clean_world
    ids = pd.read_parquet(settings.truth_dir / "identities.parquet")
    assert ids.loc[ids["identifier_type"] == "cookie_id", "person_id"].nunique() == summaries[-1].people
    shared = ids[ids["shared"]]
    assert shared["identifier_type"].eq("device_id").all() and 0.01 < shared["person_id"].nunique() / summaries[-1].people < 0.06
    not_shared = ids[~ids["shared"] & (ids["identifier_type"] != "device_id")]
    assert not not_shared.duplicated(["identifier_type", "identifier_value"]).any()
    events = pd.read_csv(settings.landing_dir / "events" / "2026-01-12.csv", dtype=str)
    known = set(ids["identifier_value"])
    assert events["cookie_id"].dropna().isin(known).all()


def test_given_a_plan_ranked_by_the_true_uplift_when_scoring_then_its_qini_is_the_oracle_qini(tmp_path: Path) -> None:
    from sim.oracle import uplift_ranking

    settings = Settings(home=tmp_path, customers=20_000, dirt=0.0, history_weeks=8)
    simulate_period(settings, 0)
    effects = pd.read_parquet(settings.truth_dir / "effects" / "2026-01-05.parquet")
    target = effects[effects["alive"] & effects["member_id"].notna() & effects["consent_email"]]
    arm = np.where(np.random.default_rng(1).random(len(target)) < 0.5, "treatment", "control")
    plan = pd.DataFrame({"member_id": target["member_id"], "campaign_id": "c-test", "offer": "pct20",
                         "channel": "email", "offer_type": "percent_off", "offer_value": 20.0, "arm": arm,
                         "assignment_probability": 0.5, "cost_per_contact": 0.01})
    simulate_period(settings, 1, plan)
    # The plan as a perfect model would have written it: each customer's true uplift in the cycle it ran.
    truth = pd.read_parquet(settings.truth_dir / "effects" / "2026-01-12.parquet").drop_duplicates("member_id")
    plan["expected_uplift"] = plan["member_id"].map(truth.set_index("member_id")["uplift__pct20__email"]).astype(float)
    path = settings.exports_dir / "plans" / "2026-01-12.parquet"
    path.parent.mkdir(parents=True)
    plan.to_parquet(path)
    perfect = uplift_ranking(settings, 1)
    assert perfect is not None and perfect.assignments == len(plan)
    assert perfect.qini_model == pytest.approx(perfect.qini_oracle) and perfect.qini_oracle > 0
    assert perfect.spearman_true == pytest.approx(1.0)

    plan.assign(expected_uplift=-plan["expected_uplift"]).to_parquet(path)  # the worst ranking there is
    worst = uplift_ranking(settings, 1)
    assert worst.qini_model < 0 < perfect.qini_oracle and worst.spearman_true == pytest.approx(-1.0)


def test_given_sends_when_engaging_then_people_open_more_on_the_channel_they_prefer() -> None:
    from sim.campaigns import Assignment, engage
    from sim.world import LOST_CAUSE, member_ids

    n = 40_000
    preferred = np.arange(n) < n // 2
    people = {
        "open_prop": np.full(n, 0.2, dtype=np.float32),
        "response_class": np.full(n, LOST_CAUSE, dtype=np.int8),
        **{f"aff_{c}": np.where(preferred, 1.6, 0.4).astype(np.float32) for c in CHANNELS},
        **{f"unreachable_{c}": np.zeros(n, dtype=bool) for c in CHANNELS},
    }
    everyone = np.arange(n)
    sent = np.ones(n, dtype=bool)
    a = Assignment(
        person=everyone, campaign_id=np.full(n, "c1"), channel=np.full(n, "email"), offer_type=np.full(n, "none"),
        offer_value=np.zeros(n), treatment=sent, probability=np.full(n, 0.9), cost=np.zeros(n), delivered=sent,
        consent_violations=0, unknown_members=0,
    )
    events = engage(np.random.default_rng(0), people, a, np.zeros(n), np.full(n, 1_000), 10**6).frames["campaign_events"]
    opened = pd.Series(events["member_id"].values.to_pylist())[
        np.asarray(events["event_type"].values.to_pylist()) == "open"]
    opened_preferring = opened.isin(member_ids(everyone[preferred]).to_pylist())
    # Email opens are 20 % for an average person: 32 % for those who prefer the channel, 8 % for the others.
    assert opened_preferring.sum() / (n // 2) == pytest.approx(0.32, abs=0.015)
    assert (~opened_preferring).sum() / (n // 2) == pytest.approx(0.08, abs=0.01)


def test_given_newsletter_history_then_every_member_got_it_on_each_consented_channel_until_unsubscribing(clean_world) -> None:
    settings, _ = clean_world
    day = settings.start_date.isoformat()
    campaigns = pd.read_csv(settings.landing_dir / "campaigns" / f"{day}.csv", dtype=str)
    newsletters = campaigns[campaigns["campaign_id"].str.startswith("newsletter-")]
    assert len(newsletters) == settings.newsletter_history * len(CHANNELS)
    assert set(newsletters["offer_type"]) == {"none"}
    sends = pd.read_csv(settings.landing_dir / "campaign_sends" / f"{day}.csv", dtype=str)
    sends = sends.merge(newsletters[["campaign_id", "channel"]], on="campaign_id")
    assert set(sends["arm"]) == {"treatment"}  # no holdout: it measures engagement, not effects
    sent_at = pd.to_datetime(sends["sent_at"], format="mixed", utc=True)
    assert sent_at.max() < pd.Timestamp(settings.start_date, tz="UTC") - pd.Timedelta(days=30)
    # Each newsletter goes to the members consenting then; most members get all twelve on a channel.
    per_member = sends.groupby(["member_id", "channel"]).size()
    assert per_member.max() == settings.newsletter_history and per_member.median() >= settings.newsletter_history - 1
    consents = pd.read_csv(settings.landing_dir / "consents" / f"{day}.csv", dtype=str)
    signup = consents[consents["source"] == "signup"]
    opted_out = signup.loc[signup["status"] == "opt_out", ["member_id", "channel"]]
    assert sends.merge(opted_out, on=["member_id", "channel"]).empty
    # An unsubscribe withdraws the consent: nothing more on that channel, and a consent row says so.
    events = pd.read_csv(settings.landing_dir / "campaign_events" / f"{day}.csv", dtype=str)
    events = events.merge(newsletters[["campaign_id", "channel"]], on="campaign_id")
    unsubscribed = events[events["event_type"] == "unsubscribe"]
    assert len(unsubscribed) > 0
    withdrawn = consents[(consents["source"] == "unsubscribe_link") & (consents["status"] == "opt_out")]
    assert len(withdrawn.merge(unsubscribed[["member_id", "channel"]], on=["member_id", "channel"])) == len(unsubscribed)
    after = sends.merge(unsubscribed[["member_id", "channel", "occurred_at"]], on=["member_id", "channel"])
    assert (pd.to_datetime(after["sent_at"], format="mixed", utc=True)
            <= pd.to_datetime(after["occurred_at"].astype("int64"), unit="ms", utc=True)).all()
    assert {"delivered", "open", "click", "bounce"} <= set(events["event_type"])


def test_given_no_newsletter_history_then_cycle_0_lands_only_its_own_campaign(tmp_path: Path) -> None:
    settings, _ = run_cycles(tmp_path, cycles=1, customers=300, history_weeks=4, dirt=0.0, newsletter_history=0)
    campaigns = pd.read_csv(settings.landing_dir / "campaigns" / f"{settings.start_date.isoformat()}.csv", dtype=str)
    assert not campaigns["campaign_id"].str.startswith("newsletter-").any() and len(campaigns) > 0
