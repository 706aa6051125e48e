"""Exports: the plan file the next cycle's simulator reads, and the senders' import files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from campaign_loop import pipeline
from campaign_loop.config import CHANNELS, Settings
from ml.decide import CampaignPlan, DesignConfig, design_campaign
from ml.export import (
    SCORE_COLUMNS,
    SENDER_COLUMNS,
    SIMULATOR_COLUMNS,
    summary_markdown,
    write_plan,
    write_scores,
)
from tests.ml.test_decide import make_world, without_consent_records

PII = {"email", "phone", "full_name", "address", "birth_date"}


@pytest.fixture(scope="module")
def plan() -> CampaignPlan:
    # cycle_id is the start of cycle 1 under the default Settings (start_date 2026-01-05, 7 days).
    return design_campaign(make_world(3000, 21), DesignConfig(cycle_id="2026-01-12", budget=40.0, epsilon=0.1, seed=4))


@pytest.fixture()
def written(plan: CampaignPlan, tmp_path: Path) -> tuple[Settings, dict[str, Path]]:
    settings = Settings(home=tmp_path)
    return settings, write_plan(plan, settings)


def test_the_plan_file_is_where_the_next_cycle_reads_it_with_the_simulators_columns(
    plan: CampaignPlan, written: tuple[Settings, dict[str, Path]]
) -> None:
    settings, paths = written
    assert paths["plan"] == settings.plan_path(settings.cycle_key(1))
    table = pd.read_parquet(paths["plan"])
    assert tuple(table.columns[: len(SIMULATOR_COLUMNS)]) == SIMULATOR_COLUMNS == (
        "member_id", "campaign_id", "channel", "offer_type", "offer_value", "arm", "assignment_probability",
        "cost_per_contact",
    )
    assert len(table) == len(plan.rows) and set(table["arm"]) == {"treatment", "control"}
    assert pd.api.types.is_float_dtype(table["offer_value"]) and pd.api.types.is_float_dtype(table["cost_per_contact"])
    assert pd.api.types.is_float_dtype(table["assignment_probability"])
    assert not PII & set(table.columns)


def test_sender_files_have_the_senders_columns_and_only_the_treatment_arm(
    plan: CampaignPlan, written: tuple[Settings, dict[str, Path]]
) -> None:
    settings, paths = written
    rows = plan.rows
    for channel in CHANNELS:
        path = paths[f"send_{channel}"]
        assert path == settings.exports_dir / "send" / "2026-01-12" / f"{channel}.csv"
        sent = pd.read_csv(path, dtype=str, keep_default_na=False)
        assert tuple(sent.columns) == SENDER_COLUMNS[channel]
        expected = rows[(rows["channel"] == channel) & (rows["arm"] == "treatment")]
        assert sorted(sent["member_id"]) == sorted(expected["member_id"])
        control = set(rows.loc[(rows["channel"] == channel) & (rows["arm"] == "control"), "member_id"])
        assert not control & set(sent["member_id"])
        assert not PII & set(sent.columns)
        assert sent["send_at"].str.startswith("2026-01-12T").all()


def test_coupons_only_for_discount_offers_and_unique(plan: CampaignPlan, written: tuple[Settings, dict[str, Path]]) -> None:
    _, paths = written
    email = pd.read_csv(paths["send_email"], dtype=str, keep_default_na=False)
    with_offer = ~email["campaign_id"].str.contains("-message-")
    assert with_offer.any() and (~with_offer).any()
    assert (email.loc[~with_offer, "coupon_code"] == "").all()
    codes = email.loc[with_offer, "coupon_code"]
    assert codes.str.match(r"^CL[0-9A-F]{10}$").all() and codes.is_unique
    push = pd.read_csv(paths["send_push"], dtype=str, keep_default_na=False)
    assert (push["deep_link"].str.contains("utm_campaign=") & push["deep_link"].str.startswith("app://")).all()
    # Attribution credits the session's utm_source as the channel.
    assert push["deep_link"].str.contains("?utm_source=push&utm_medium=crm&", regex=False).all()


def test_summaries_are_written_and_reruns_are_identical(plan: CampaignPlan, written: tuple[Settings, dict[str, Path]]) -> None:
    settings, paths = written
    summary = json.loads(paths["summary_json"].read_text())
    assert summary["customers_targeted"] == len(plan.rows)
    markdown = paths["summary_md"].read_text()
    assert "Holdout" in markdown and f"incremental revenue {summary['expected']['incremental_revenue']:,.2f}" in markdown
    bounced = ", ".join(f"{c} {n:,}" for c, n in plan.summary["consents_closed_by_bounce"].items())
    assert f"bounced): {bounced}" in markdown and any(summary["consents_closed_by_bounce"].values())
    # Offers and segments, as a marketer reads them: every campaign and segment with its arms.
    for counts in (summary["by_action"], summary["by_segment"]):
        assert counts
        for key, arms in counts.items():
            assert f"| {key} | {arms['treatment']:,} | {arms['control']:,} |" in markdown
    before = {k: p.read_bytes() for k, p in paths.items() if k != "plan"}
    again = write_plan(plan, settings)
    assert {k: p.read_bytes() for k, p in again.items() if k != "plan"} == before
    pd.testing.assert_frame_equal(pd.read_parquet(again["plan"]), pd.read_parquet(paths["plan"]))
    leftovers = [p for p in settings.exports_dir.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers


def test_an_empty_plan_writes_header_only_sender_files(tmp_path: Path) -> None:
    empty = design_campaign(make_world(0, 0), DesignConfig(cycle_id="2026-01-12", budget=1.0))
    paths = write_plan(empty, Settings(home=tmp_path))
    for channel in CHANNELS:
        sent = pd.read_csv(paths[f"send_{channel}"])
        assert sent.empty and tuple(sent.columns) == SENDER_COLUMNS[channel]
    assert tuple(pd.read_parquet(paths["plan"]).columns[: len(SIMULATOR_COLUMNS)]) == SIMULATOR_COLUMNS


def test_a_plan_without_the_simulators_columns_is_refused(plan: CampaignPlan, tmp_path: Path) -> None:
    broken = CampaignPlan(cycle_id=plan.cycle_id, rows=plan.rows.drop(columns="cost_per_contact"), summary=plan.summary)
    with pytest.raises(ValueError, match="cost_per_contact"):
        write_plan(broken, Settings(home=tmp_path))


def test_the_simulator_executes_the_exported_plan(tmp_path: Path) -> None:
    """Contract test with sim/: the next cycle reads our file and lands our campaigns' sends."""
    from ml.decide import action_catalogue, uplift_column

    settings = Settings(home=tmp_path, customers=500, history_weeks=2, file_format="parquet")
    pipeline.simulate(settings, 0)
    customers = pd.concat(pd.read_parquet(p) for p in sorted((settings.landing_dir / "customers").glob("*.parquet")))
    members = customers["member_id"].dropna().astype(str).unique()
    world = make_world(len(members), 3)
    world["member_id"] = members
    world["unsubscribed_recently"] = False
    world["contacts_last_30d"] = 0
    for action in action_catalogue():
        world[uplift_column(action)] = 0.02  # worth sending to everyone, so the plan is not empty
    plan = design_campaign(world, DesignConfig(cycle_id=settings.cycle_key(1), budget=1e3, seed=1))
    write_plan(plan, settings)
    summary = pipeline.simulate(settings, 1)
    assert summary["plan"] == str(settings.plan_path(settings.cycle_key(1)))
    sends = pd.read_parquet(settings.landing_dir / "campaign_sends" / "2026-01-12.parquet")
    assert set(sends["campaign_id"]) <= set(plan.rows["campaign_id"]) and len(sends) > 0


def test_the_scores_behind_a_plan_are_kept_for_the_marketer(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    scores = pd.DataFrame({
        "customer_id": ["c2", "c1"], "member_id": ["M2", None], "as_of_date": ["2026-01-12"] * 2,
        "segment": ["champions", "prospect"], "p_buy": [0.4, 0.02], "p_churn": [0.1, 0.9], "p_alive": [0.95, 0.3],
        "clv_52w": [310.0, 4.5], "expected_spend": [61.0, 40.0], "scored_by__churn": ["3", "3"],
        **{f"preference_{c}": [1.2, 0.9] for c in CHANNELS},
        "uplift__message__email": [0.01, 0.0],  # the optimiser's input, not a score to keep
    })
    path = write_scores(scores, settings, "2026-01-12")
    assert path == settings.exports_dir / "scores" / "2026-01-12.parquet"
    kept = pd.read_parquet(path)
    assert list(kept.columns) == [*SCORE_COLUMNS, "scored_by__churn"]
    assert list(kept["customer_id"]) == ["c1", "c2"] and list(kept["p_churn"]) == [0.9, 0.1]
    with pytest.raises(ValueError, match=r"scores for 2026-01-12 lack the columns \['clv_52w'\]"):
        write_scores(scores.drop(columns="clv_52w"), settings, "2026-01-12")


@pytest.mark.parametrize(("weight", "line"), [
    (None, "- Channel preference (opens): not used (no randomised campaign has measured it yet, or channel_preference is off)"),
    (0.0, "- Channel preference (opens): weight 0, not used; the randomised campaigns contradict it"),
    (0.4, "- Channel preference (opens): weight 0.400 (0: effects ignore it; 1: in proportion to it)"),
])
def test_the_summary_says_how_much_channel_preference_the_plan_used(weight: float | None, line: str) -> None:
    world = make_world(500, 2)
    if weight is not None:
        world["preference_weight"] = weight
    plan = design_campaign(world, DesignConfig(cycle_id="2026-01-12", budget=40.0, seed=4))
    assert plan.summary["channel_preference_weight"] == weight
    assert line in summary_markdown(plan)


def test_send_files_only_for_the_enabled_channels(plan: CampaignPlan, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, channels="email,sms")
    send_dir = settings.exports_dir / "send" / "2026-01-12"
    write_plan(plan, Settings(home=tmp_path))  # last run's plan, on every channel
    assert {p.stem for p in send_dir.glob("*.csv")} == set(CHANNELS)
    narrow = design_campaign(make_world(3000, 21), DesignConfig.from_settings(settings, "2026-01-12", epsilon=0.1))
    paths = write_plan(narrow, settings)
    assert {p.stem for p in send_dir.glob("*.csv")} == {"email", "sms"}  # no push or kakao file, none left over
    assert {k for k in paths if k.startswith("send_")} == {"send_email", "send_sms"}
    for channel in ("email", "sms"):
        sent = pd.read_csv(paths[f"send_{channel}"], dtype=str)
        assert len(sent) == ((narrow.rows["channel"] == channel) & (narrow.rows["arm"] == "treatment")).sum() > 0
    assert "- Channels: email, sms; send times are local hours in Asia/Seoul" in paths["summary_md"].read_text()


def test_the_summary_says_why_a_plan_reaches_nobody_and_when_consent_is_assumed(tmp_path: Path) -> None:
    world = without_consent_records(make_world(800, 22))
    empty = design_campaign(world, DesignConfig(cycle_id="2026-01-12", budget=40.0))
    paths = write_plan(empty, Settings(home=tmp_path))
    text = paths["summary_md"].read_text()
    assert "- **No customer targeted**: no consents landed: none of the 800 customers has a consent record" in text
    assert "- Consent: recorded opt-ins only; 800 of 800 customers have no consent record on an enabled channel" in text
    assert "contradict" not in text
    assert json.loads(paths["summary_json"].read_text())["zero_reach_reason"] == empty.summary["zero_reach_reason"]
    assumed = design_campaign(world, DesignConfig(cycle_id="2026-01-12", budget=40.0, assume_consent=True))
    text = summary_markdown(assumed)
    assert "- Consent: assumed (assume_consent) where a member has no consent record on an enabled channel: 800 " \
           "customers; recorded opt-outs hold" in text
    assert "No customer targeted" not in text and len(assumed.rows) > 0
