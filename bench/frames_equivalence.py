"""Whether the model frames read from the marts of models/marts/ml equal the frames of the SQL they replace.

Until issue 26 ``ml/features.py`` joined the marts in DuckDB SQL of its own; the joins are now dbt models
(``fct_classifier_rows``, ``fct_uplift_rows``, ``fct_scoring_rows``) read through the warehouse interface.
This script keeps the old SQL (here only) and compares every frame it gave with today's
``ml.features`` on one simulated world: same columns in the same order, same dtypes, same values,
both sorted the same way (``pandas.testing.assert_frame_equal``). The as-of joins are checked twice: on
the world as simulated (every campaign has its cycle) and after some campaigns lose their cycle_id, as a
retailer's import would, so the snapshot is chosen from the start time.

    .venv/bin/python bench/frames_equivalence.py
    .venv/bin/python bench/frames_equivalence.py --customers 2000 --cycles 3 --write
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.features_equivalence import simulated_world  # noqa: E402
from bench.results import machine, write_section  # noqa: E402
from campaign_loop.config import CHANNELS  # noqa: E402
from ml import features  # noqa: E402
from ml.features import (  # noqa: E402
    ENGAGEMENT_COLUMNS,
    FEATURES,
    LABEL_COMPLETE,
    action_features,
    action_name,
    typed_features,
)

HEADING = "## Model frames from marts (issue 26)"
SCHEMA = "marts"

# --------------------------------------------------------------------------- the SQL before issue 26


def _query(path: Path, sql: str, params: list[object] | None = None) -> pd.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or []).df()


def _feature_select(alias: str = "f", extra: tuple[str, ...] = ()) -> str:
    columns = [*(c for c in FEATURES if c != "is_member"), *extra]
    return ", ".join(f"{alias}.{c}" for c in columns) + f", {alias}.member_id is not null as is_member"


def old_as_of_dates(path: Path) -> list[date]:
    frame = _query(path, f"select distinct as_of_date from {SCHEMA}.fct_customer_features order by 1")
    return [pd.Timestamp(d).date() for d in frame["as_of_date"]]


def old_classifier_frames(path: Path, labels: tuple[str, ...], max_as_of: date | None = None,
                          min_as_of: date | None = None) -> dict[str, pd.DataFrame]:
    where = ["(" + " or ".join(f"l.{LABEL_COMPLETE[label]}" for label in labels) + ")"]
    params: list[object] = []
    if max_as_of is not None:
        where.append("f.as_of_date <= ?")
        params.append(max_as_of)
    if min_as_of is not None:
        where.append("f.as_of_date >= ?")
        params.append(min_as_of)
    label_columns = ", ".join(
        f"cast(l.{label} as integer) as label__{label}, l.{LABEL_COMPLETE[label]} as complete__{label}" for label in labels
    )
    frame = typed_features(_query(path, f"""
        select f.customer_id, f.as_of_date, {_feature_select()}, {label_columns}
        from {SCHEMA}.fct_customer_features as f
        inner join {SCHEMA}.fct_customer_labels as l
            on l.customer_id = f.customer_id and l.as_of_date = f.as_of_date
        where {' and '.join(where)}
        order by f.as_of_date, f.customer_id
    """, params))
    helpers = [c for label in labels for c in (f"label__{label}", f"complete__{label}")]
    frames = {}
    for label in labels:
        complete = frame[f"complete__{label}"].fillna(False).to_numpy(bool)
        part = frame.loc[complete, [c for c in frame.columns if c not in helpers]].reset_index(drop=True)
        part["label"] = frame.loc[complete, f"label__{label}"].astype("int64").to_numpy()
        frames[label] = part
    return frames


def old_uplift_frame(path: Path, max_as_of: date | None = None) -> pd.DataFrame:
    where, params = ["s.ends_at < l.data_end_at"], []
    if max_as_of is not None:
        where.append("s.as_of_date <= ?")
        params.append(max_as_of)
    frame = _query(path, f"""
        with data_end as (select max(data_end_at) as data_end_at from {SCHEMA}.fct_customer_labels),
        snapshots as (
            select distinct as_of_date, cast(as_of_date as timestamp) as snapshot_at
            from {SCHEMA}.fct_customer_features
        ),
        sends as (
            select a.* exclude (as_of_date), coalesce(a.as_of_date, d.as_of_date) as as_of_date
            from {SCHEMA}.fct_action_sends as a
            asof left join snapshots as d on a.starts_at >= d.snapshot_at
        )
        select
            f.customer_id, f.as_of_date, {_feature_select(extra=ENGAGEMENT_COLUMNS)},
            s.campaign_id, s.member_id as send_member_id, s.channel, s.offer_type, s.offer_value,
            cast(s.is_treatment as integer) as treatment, s.assignment_probability,
            cast(s.is_converted as integer) as is_converted, cast(s.margin as double) as margin
        from sends as s
        cross join data_end as l
        inner join {SCHEMA}.fct_customer_features as f
            on f.customer_id = s.customer_id and f.as_of_date = s.as_of_date
        where {' and '.join(where)}
        order by s.as_of_date, s.campaign_id, f.customer_id
    """, params)
    campaigns = list(zip(frame["offer_type"], frame["offer_value"], frame["channel"], strict=True))
    names = {campaign: action_name(*campaign) for campaign in set(campaigns)}
    frame["action"] = [names[campaign] for campaign in campaigns]
    frame = typed_features(frame[frame["action"].notna()].reset_index(drop=True))
    frame = pd.concat([frame, action_features(frame["action"])], axis=1)
    for column in ("treatment", "is_converted"):
        frame[column] = frame[column].astype("int64")
    frame["margin"] = frame["margin"].astype("float64")
    return frame


def old_scoring_frame(path: Path, as_of: date) -> pd.DataFrame:
    bounced = ", ".join(f"coalesce(arg_max(is_bounced, sent_at) filter (where channel = '{c}'), false) as bounced_{c}"
                        for c in CHANNELS)
    frame = typed_features(_query(path, f"""
        with recent as (
            select customer_id, count(sent_at) as contacts_last_30d, bool_or(is_unsubscribed) as unsubscribed_recently
            from {SCHEMA}.fct_campaign_sends
            where customer_id is not null
                and coalesce(sent_at, starts_at) < cast(? as timestamp)
                and coalesce(sent_at, starts_at) >= cast(? as timestamp) - interval 30 day
            group by customer_id
        ),
        bounced as (
            select customer_id, {bounced}
            from {SCHEMA}.fct_campaign_sends
            where customer_id is not null and sent_at < cast(? as timestamp)
            group by customer_id
        )
        select
            f.customer_id, f.as_of_date, f.member_id, {_feature_select(extra=ENGAGEMENT_COLUMNS)}, f.rfm_segment as segment,
            coalesce(r.contacts_last_30d, 0) as contacts_last_30d,
            coalesce(r.unsubscribed_recently, false) as unsubscribed_recently,
            {", ".join(f"coalesce(b.bounced_{c}, false) as bounced_{c}" for c in CHANNELS)}
        from {SCHEMA}.fct_customer_features as f
        left join recent as r on r.customer_id = f.customer_id
        left join bounced as b on b.customer_id = f.customer_id
        where f.as_of_date = ?
        order by f.customer_id
    """, [as_of, as_of, as_of, as_of]))
    revenue, margin = frame["revenue_total"], frame["margin_total"]
    population_rate = float(margin.sum() / revenue.sum()) if revenue.sum() > 0 else 0.0
    frame["margin_rate"] = np.where(revenue > 0, margin / revenue.where(revenue > 0), population_rate)
    frame["contacts_last_30d"] = frame["contacts_last_30d"].astype("int64")
    frame["unsubscribed_recently"] = frame["unsubscribed_recently"].astype(bool)
    for column in (*(f"consent_{c}" for c in CHANNELS), *(f"bounced_{c}" for c in CHANNELS)):
        frame[column] = frame[column].astype(bool)
    frame["segment"] = frame["segment"].astype(str)
    return frame


def old_transactions(path: Path, before: date) -> pd.DataFrame:
    return _query(path, f"""
        select customer_id, ordered_at as date, cast(total_amount as double) as amount
        from {SCHEMA}.fct_orders
        where is_revenue and customer_id is not null and ordered_at < cast(? as timestamp)
        order by ordered_at
    """, [before])


# --------------------------------------------------------------------------- comparison

SORT_KEYS = {
    "classifier": ["as_of_date", "customer_id"],
    "uplift": ["as_of_date", "campaign_id", "customer_id", "send_member_id"],
    "scoring": ["customer_id"],
    "transactions": ["customer_id", "date", "amount"],
}


def same(kind: str, before: pd.DataFrame, now: pd.DataFrame) -> str:
    """'equal', or the first difference assert_frame_equal reports."""
    def ordered(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.sort_values(SORT_KEYS[kind], kind="stable", ignore_index=True)
    try:
        pd.testing.assert_frame_equal(ordered(before), ordered(now), check_exact=True)
    except AssertionError as error:
        return str(error).splitlines()[0][:200] + " ..."
    return "equal"


def _arguments(bounds: dict[str, date]) -> str:
    return ", ".join(f"{k}={v}" for k, v in bounds.items()) or "all dates"


def cases(path: Path) -> list[tuple[str, str, Callable[[], pd.DataFrame], Callable[[], pd.DataFrame]]]:
    """(frame, arguments, before, now) for every frame and the date bounds the callers pass."""
    dates = old_as_of_dates(path)
    labels = tuple(LABEL_COMPLETE)
    middle = dates[len(dates) // 2]
    out: list[tuple[str, str, Callable[[], pd.DataFrame], Callable[[], pd.DataFrame]]] = [
        ("as_of_dates", "", lambda: pd.DataFrame({"d": old_as_of_dates(path)}),
         lambda: pd.DataFrame({"d": features.as_of_dates(path)})),
    ]
    for bounds in ({}, {"max_as_of": middle}, {"min_as_of": middle}):
        for label in labels:
            out.append((f"classifier {label}", _arguments(bounds),
                        lambda label=label, b=bounds: old_classifier_frames(path, labels, **b)[label],
                        lambda label=label, b=bounds: features.classifier_frames(path, labels, **b)[label]))
    for bounds in ({}, {"max_as_of": middle}):
        out.append(("uplift", _arguments(bounds),
                    lambda b=bounds: old_uplift_frame(path, **b), lambda b=bounds: features.uplift_frame(path, **b)))
    for as_of in dates:
        out.append(("scoring", f"as_of={as_of}", lambda d=as_of: old_scoring_frame(path, d),
                    lambda d=as_of: features.scoring_frame(path, as_of=d)))
    out.append(("transactions", f"before={dates[-1]}", lambda: old_transactions(path, dates[-1]),
                lambda: features.transactions(path, dates[-1])))
    return out


def compare(world: str, path: Path) -> list[dict[str, object]]:
    rows = []
    for frame, arguments, before, now in cases(path):
        old, new = before(), now()
        kind = frame.split()[0]
        result = "equal" if kind == "as_of_dates" and old.equals(new) else (
            same(kind, old, new) if kind != "as_of_dates" else "differ")
        rows.append({"world": world, "frame": frame, "arguments": arguments, "rows": len(new), "result": result})
        sys.stderr.write(f"{rows[-1]}\n")
    return rows


def unplace_campaigns(settings: object, share_of_campaigns: int = 3) -> int:
    """Drop the cycle of every ``share_of_campaigns``-th campaign (and move its start into its cycle), as an
    import without cycle_id would, then rebuild the uplift rows from it."""
    import duckdb

    from campaign_loop.dbt import run_dbt

    with duckdb.connect(str(settings.warehouse_path)) as con:  # type: ignore[attr-defined]
        campaigns = [c for (c,) in con.execute(
            f"select distinct campaign_id from {SCHEMA}.fct_action_sends order by 1").fetchall()][::share_of_campaigns]
        con.execute(f"""update {SCHEMA}.fct_action_sends
                        set cycle_id = null, as_of_date = null, starts_at = starts_at + interval 2 day
                        where list_contains(?, campaign_id)""", [campaigns])
    result = run_dbt(settings, "run", "--select", "fct_uplift_rows",
                     target_path=settings.home / "dbt" / "target")  # type: ignore[attr-defined]
    if result.returncode != 0:
        raise RuntimeError(f"dbt run of fct_uplift_rows failed:\n{result.stdout[-4000:]}")
    return len(campaigns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--cycles", type=int, default=3, help="cycles simulated and ingested (0..K-1)")
    parser.add_argument("--write", action="store_true", help="replace the table in bench/RESULTS.md")
    args = parser.parse_args()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        settings = simulated_world(Path(tmp) / "world", args.customers, args.cycles)
        world = f"simulated, {args.customers:,} customers, cycles 0-{args.cycles - 1}"
        rows = compare(world, settings.warehouse_path)
        moved = unplace_campaigns(settings)
        rows += [r for r in compare(f"{world}, {moved} campaigns without cycle_id", settings.warehouse_path)
                 if r["frame"] == "uplift"]
    lines = [
        f"Command: `{shlex.join([Path(sys.executable).name, 'bench/frames_equivalence.py', *sys.argv[1:]])}`  ",
        f"Commit: {head}, frames of ml/features.py against the SQL it ran before issue 26 (kept in the script)  ",
        f"Machine: {machine()}  ",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        "| world | frame | arguments | rows | assert_frame_equal |",
        "|---|---|---|---:|---|",
        *(f"| {r['world']} | {r['frame']} | {r['arguments']} | {r['rows']:,} | {r['result']} |" for r in rows),
    ]
    table = "\n".join(lines)
    sys.stdout.write(table + "\n")
    if args.write:
        write_section(table, HEADING)
    if any(r["result"] != "equal" for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
