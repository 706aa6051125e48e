"""Export a designed campaign: the plan the next cycle reads, and the files the senders import.

Layout under ``settings.exports_dir``::

    plans/<cycle_id>.parquet        the plan, both arms (the simulator / next cycle reads this file)
    plans/<cycle_id>.summary.json   the plan summary
    plans/<cycle_id>.summary.md     the same, for people
    send/<cycle_id>/<channel>.csv   one file per enabled channel, treatment arm only, in the sender's format
    triggers/<cycle_id>/<as_of>.parquet   one run of the trigger journeys, both arms (and .summary.json)
    send/<cycle_id>/triggers-<as_of>/<channel>.csv   its sender files

Exports carry ``member_id`` only: the senders look contact details up themselves, so no e-mail
address or phone number leaves the warehouse through this path. Every file is written to a temporary
name and renamed, so a rerun of the same cycle replaces it and a crash never leaves half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from campaign_loop.actions import PLAN_COLUMNS
from campaign_loop.config import CHANNELS, Settings
from ml.decide import CampaignPlan
from ml.engagement import preference_column
from ml.triggers import TRIGGER_COLUMNS, TriggerPlan

# What the next cycle's simulator reads from the plan file: the contract campaign_loop.actions owns.
SIMULATOR_COLUMNS: tuple[str, ...] = PLAN_COLUMNS

SENDER_COLUMNS: dict[str, tuple[str, ...]] = {
    "email": ("member_id", "campaign_id", "template", "coupon_code", "send_at"),
    "sms": ("member_id", "campaign_id", "message_template", "coupon_code", "send_at"),
    "kakao": ("member_id", "campaign_id", "message_template", "coupon_code", "send_at"),
    "push": ("member_id", "campaign_id", "title", "body", "deep_link", "send_at"),
}

# Push copy per offer; e-mail, SMS and KakaoTalk copy lives in the sender's templates.
PUSH_COPY: dict[str, tuple[str, str]] = {
    "message": ("New picks for you", "See what's new this week."),
    "pct10": ("10% off, this week only", "Your coupon is waiting at checkout."),
    "pct20": ("20% off, this week only", "Your coupon is waiting at checkout."),
}


def coupon_codes(campaign_ids: pd.Series, member_ids: pd.Series) -> pd.Series:
    """One code per member and campaign, derived (not random) so a rerun issues the same codes and a
    redemption traces back to its campaign. Not reversible to the member ID."""
    return pd.Series(
        [
            "CL" + hashlib.sha256(f"{c}|{m}".encode()).hexdigest()[:10].upper()
            for c, m in zip(campaign_ids.astype(str), member_ids.astype(str), strict=True)
        ],
        index=campaign_ids.index,
        dtype=str,
    )


def sender_frame(rows: pd.DataFrame, channel: str) -> pd.DataFrame:
    """The import file of one channel's sender: treatment rows of that channel, in its columns."""
    sent = rows[(rows["arm"] == "treatment") & (rows["channel"] == channel)]
    with_coupon = sent["offer_type"] != "none"
    codes = coupon_codes(sent["campaign_id"], sent["member_id"]).where(with_coupon, "")
    template = sent["offer"].astype(str) + "_" + channel
    out = pd.DataFrame({
        "member_id": sent["member_id"].astype(str),
        "campaign_id": sent["campaign_id"].astype(str),
        "template": template,
        "message_template": template,
        "coupon_code": codes,
        "title": sent["offer"].map(lambda o: PUSH_COPY.get(o, PUSH_COPY["message"])[0]),
        "body": sent["offer"].map(lambda o: PUSH_COPY.get(o, PUSH_COPY["message"])[1]),
        # The clickstream's utm_source is the channel attribution credits (and matches to spend), utm_campaign
        # the campaign: the same tags a clicked e-mail, SMS or KakaoTalk link lands with.
        "deep_link": "app://offers/" + sent["offer"].astype(str) + "?utm_source=" + channel
        + "&utm_medium=crm&utm_campaign=" + sent["campaign_id"].astype(str)
        + codes.map(lambda c: f"&coupon={c}" if c else ""),
        "send_at": pd.to_datetime(sent["send_at"]).map(lambda t: t.isoformat()),
    })
    return out.loc[:, list(SENDER_COLUMNS[channel])].reset_index(drop=True)


# A cell a spreadsheet would read as a formula (OWASP's CSV injection list), also after leading whitespace,
# which Excel and LibreOffice skip: a member id "=HYPERLINK(...)" from a retailer's export must stay text.
_FORMULA_START = re.compile(r"^\s*[=+\-@\t\r]")


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text cell a spreadsheet would evaluate prefixed by a single quote (OWASP's fix)."""
    def cell(value: Any) -> Any:
        return f"'{value}" if isinstance(value, str) and _FORMULA_START.match(value) else value

    return frame.map(cell)


def summary_markdown(plan: CampaignPlan) -> str:
    """A short human summary of the plan."""
    s = plan.summary
    h, e, b = s["holdout"], s["expected"], s["budget"]
    roi = f"{e['roi']:.2f}" if e["roi"] is not None else "n/a"
    lines = [
        f"# Campaign plan {plan.cycle_id}",
        "",
        f"- Customers targeted: {s['customers_targeted']:,} of {s['customers_reachable']:,} reachable "
        f"({s['treatment']:,} treatment, {s['control']:,} control, {s['explored']:,} exploration)",
        f"- Holdout: {h['share']:.1%} ({h['size']:,}); power {h['power']:.2f} to detect "
        f"+{h['min_detectable_lift']:.3f} on a baseline of {h['baseline_conversion']:.3f}"
        + (" (underpowered: pool across cycles)" if h["underpowered"] else ""),
        f"- Expected incremental revenue {e['incremental_revenue']:,.2f}, margin {e['incremental_margin']:,.2f}, "
        f"value after contact cost {e['incremental_value']:,.2f}; cost {e['cost']:,.2f} "
        f"(contacts {e['contact_cost']:,.2f}, discounts {e['discount_cost']:,.2f}), ROI {roi}",
        f"- Budget used {b['used']:,.2f} of {b['total']:,.2f}",
        *_reach_lines(s),
        "- Consents closed by a bounce (newest send on the channel bounced): "
        + (", ".join(f"{c} {n:,}" for c, n in s["consents_closed_by_bounce"].items()) or "none"),
        _preference_line(s.get("channel_preference_weight")),
        *_arm_table("campaign (offer x channel)", s["by_action"]),
        *_arm_table("channel", s["by_channel"]),
        *_arm_table("segment", s["by_segment"]),
        *_tier_table(s),
        *_policy_choice_lines(s.get("policy_choice")),
    ]
    return "\n".join(lines) + "\n"


def _policy_choice_lines(choice: dict[str, Any] | None) -> list[str]:
    """The off-policy evaluation that chose the plan (ml/policy_choice.py); none when policy_choice is off."""
    if not choice:
        return []

    def interval(e: dict[str, Any]) -> str:
        if e["value"] is None:
            return "n/a (an arm without a matched row)"
        if e["se"] is None:
            return f"{e['value']:,.2f} (no interval: too few matched rows)"
        return f"{e['value']:,.2f} [{e['low']:,.2f}, {e['high']:,.2f}]"

    cycles = ", ".join(f"{c} ({m})" for c, m in choice["cycles"].items()) or "none"
    lines = ["", f"Policy choice (off-policy evaluation on cycles {cycles}): **{choice['chosen']}**; {choice['reason']}", ""]
    if choice["estimates"]:
        lines += ["| candidate | treated | estimated incremental profit | minus the design (paired) |", "|---|---:|---:|---:|"]
        lines += [f"| {name} | {choice['treated'].get(name, 0):,} | {interval(e)} | "
                  f"{interval(choice['versus_incumbent'][name]) if name in choice['versus_incumbent'] else '-'} |"
                  for name, e in choice["estimates"].items()]
    return lines


def _tier_table(s: dict[str, Any]) -> list[str]:
    """The treatment arm's budget per value tier (marts.dim_loyalty_tiers); plans before issue 27 have none."""
    tiers = s["budget"].get("by_tier")
    if not tiers:
        return []
    return ["", f"Budget by value tier (value horizon {s.get('value_horizon_weeks', 0)} weeks):", "",
            "| value tier | customers | budget used | expected value | of it retained |", "|---|---:|---:|---:|---:|",
            *(f"| {k} | {t['customers']:,.0f} | {t['used']:,.2f} | {t['expected_value']:,.2f} | {t['retained_value']:,.2f} |"
              for k, t in tiers.items())]


def _reach_lines(s: dict[str, Any]) -> list[str]:
    """Channels, the consent rule, and why nobody is targeted when that is so (plans written before these
    keys existed have none of them)."""
    lines = []
    if "channels" in s:
        lines.append(f"- Channels: {', '.join(s['channels'])}; send times are local hours in {s['timezone']}")
    if s.get("send_hours"):
        start, end = s["send_window"]
        lines.append(f"- Send hours (treatment, local, window {start:02d}:00-{end:02d}:00): "
                     + ", ".join(f"{int(h):02d}h {n:,}" for h, n in s["send_hours"].items()))
    reach = s.get("reach")
    if reach is not None:
        if s.get("assume_consent"):
            lines.append(f"- Consent: assumed (assume_consent) where a member has no consent record on an enabled "
                         f"channel: {reach['consent_assumed']:,} customers; recorded opt-outs hold")
        else:
            lines.append(f"- Consent: recorded opt-ins only; {reach['customers'] - reach['consent_recorded']:,} of "
                         f"{reach['customers']:,} customers have no consent record on an enabled channel")
    if s.get("frequency_capped"):
        lines.append(f"- Frequency caps: {s['frequency_capped']:,} customers under the contact cap were at their own "
                     "cap, learned from fatigue (ml/frequency.py), and not contacted")
    if s.get("zero_reach_reason"):
        lines.append(f"- **No customer targeted**: {s['zero_reach_reason']}")
    return lines


def _preference_line(weight: float | None) -> str:
    if weight is None:
        return "- Channel preference (opens): not used (no randomised campaign has measured it yet, or channel_preference is off)"
    if weight == 0:
        return "- Channel preference (opens): weight 0, not used; the randomised campaigns contradict it"
    return (f"- Channel preference (opens): weight {weight:.3f} (0: effects ignore it; 1: in proportion to it), "
            "the randomised campaigns' slope weighed against a prior of 1")


def _arm_table(heading: str, counts: dict[str, dict[str, int]]) -> list[str]:
    return ["", f"| {heading} | treatment | control |", "|---|---:|---:|",
            *(f"| {k} | {n['treatment']:,} | {n['control']:,} |" for k, n in counts.items())]


def _atomic(path: Path, write: Callable[[Path], Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# What the models said of every scored customer, kept beside the plan: churn and CLV inform no action the
# optimiser takes today, but a marketer reads them (retention lists, value tiers) and audits the plan by them.
SCORE_COLUMNS: tuple[str, ...] = (
    "customer_id", "member_id", "as_of_date", "segment", "p_buy", "p_churn", "p_alive", "clv_52w", "expected_spend",
    *(preference_column(c) for c in CHANNELS),
)


def write_scores(scores: pd.DataFrame, settings: Settings, cycle_id: str) -> Path:
    """Write the scores the plan of ``cycle_id`` was designed from (:data:`SCORE_COLUMNS` and which model
    version gave each, ``scored_by__*``) to ``exports/scores/<cycle_id>.parquet``."""
    if missing := [c for c in SCORE_COLUMNS if c not in scores.columns]:
        raise ValueError(f"scores for {cycle_id} lack the columns {missing}")
    columns = [*SCORE_COLUMNS, *(c for c in scores.columns if c.startswith("scored_by__"))]
    frame = scores[columns].sort_values("customer_id", kind="stable").reset_index(drop=True)
    return _atomic(settings.exports_dir / "scores" / f"{cycle_id}.parquet", lambda p: frame.to_parquet(p, index=False))


def write_plan(plan: CampaignPlan, settings: Settings) -> dict[str, Path]:
    """Write the plan, its summaries and the per-channel sender files; returns name -> path."""
    rows = plan.rows
    if missing := [c for c in SIMULATOR_COLUMNS if c not in rows.columns]:
        raise ValueError(f"plan rows lack the simulator's columns: {missing}")
    ordered = rows[list(SIMULATOR_COLUMNS) + [c for c in rows.columns if c not in SIMULATOR_COLUMNS]]
    paths: dict[str, Path] = {}
    paths["plan"] = _atomic(settings.plan_path(plan.cycle_id), lambda p: ordered.to_parquet(p, index=False))
    plans = settings.plan_path(plan.cycle_id).parent
    paths["summary_json"] = _atomic(
        plans / f"{plan.cycle_id}.summary.json",
        lambda p: p.write_text(json.dumps(plan.summary, indent=2, sort_keys=True, default=str)),
    )
    paths["summary_md"] = _atomic(plans / f"{plan.cycle_id}.summary.md", lambda p: p.write_text(summary_markdown(plan)))
    # Every enabled channel gets a file, empty ones with a header: "nothing to send" is explicit. A channel
    # the retailer does not send on gets none, and a rerun with fewer channels removes last run's file.
    send_dir = settings.exports_dir / "send" / plan.cycle_id
    enabled = tuple(plan.summary.get("channels", CHANNELS))
    for channel in CHANNELS:
        path = send_dir / f"{channel}.csv"
        if channel not in enabled:
            path.unlink(missing_ok=True)
            continue
        frame = neutralise_formulas(sender_frame(rows, channel))  # people open these in spreadsheets
        # RFC 4180's CRLF: the writer then quotes a cell holding a bare CR, which a spreadsheet would
        # otherwise take for the end of the row (and read the rest of the cell as a new row's formula).
        paths[f"send_{channel}"] = _atomic(path, lambda p, f=frame: f.to_csv(p, index=False, lineterminator="\r\n"))
    return paths


def trigger_plan_dir(settings: Settings, cycle_id: str) -> Path:
    """Where the trigger journeys' runs of a cycle write their sends: one parquet file per run."""
    return settings.exports_dir / "triggers" / cycle_id


def write_trigger_plan(plan: TriggerPlan, settings: Settings) -> dict[str, Path]:
    """Write one run of the trigger journeys like a weekly plan: both arms (``triggers/<cycle_id>/<as_of>.parquet``,
    what the next simulated cycle executes), its summary, and per enabled channel the sender's import file of the
    treatment arm (``send/<cycle_id>/triggers-<as_of>/<channel>.csv``), send times in UTC. A rerun of the same
    moment replaces its files."""
    cycle_id = str(plan.summary["cycle_id"])
    stamp = datetime.fromisoformat(str(plan.summary["as_of"])).strftime("%Y%m%dT%H%M%S")
    folder = trigger_plan_dir(settings, cycle_id)
    rows = plan.rows
    paths = {"plan": _atomic(folder / f"{stamp}.parquet", lambda p: rows.to_parquet(p, index=False)),
             "summary_json": _atomic(folder / f"{stamp}.summary.json", lambda p: p.write_text(
                 json.dumps(plan.summary, indent=2, sort_keys=True, default=str)))}
    utc = rows.assign(send_at=pd.to_datetime(rows["send_at"]).dt.tz_localize("UTC"))
    for channel in settings.channels:
        frame = neutralise_formulas(sender_frame(utc, channel))
        path = settings.exports_dir / "send" / cycle_id / f"triggers-{stamp}" / f"{channel}.csv"
        paths[f"send_{channel}"] = _atomic(path, lambda p, f=frame: f.to_csv(p, index=False, lineterminator="\r\n"))
    return paths


def read_trigger_plans(settings: Settings, cycle_id: str, *, before: str | None = None) -> pd.DataFrame:
    """Every trigger run's rows of a cycle (in run order), or only the runs stamped before ``before``."""
    folder = trigger_plan_dir(settings, cycle_id)
    files = sorted(folder.glob("*.parquet")) if folder.exists() else []
    parts = [pd.read_parquet(f) for f in files if before is None or f.stem < before]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(TRIGGER_COLUMNS))
