"""How far a campaign's measured lift is from its true lift, per action: coupons identify their buyers.

    .venv/bin/python bench/linkage_bias.py --home /tmp/lv100k/platform --write

The platform measures a campaign on *linked* purchases (an order or receipt that resolved to the
customer). A redeemed coupon always names its member, while an ordinary till receipt names one only
when the card is shown; so in a coupon action's treatment arm every purchase is linked and in its
control arm only some are, and the measured lift gains the control's unlinked share of purchases.
This compares, per action, the lift measured on linked conversions (``fct_campaign_sends``) with the
lift on the simulator's true purchases for the same assignments, and the control arm's link rate.
Needs a home where designed campaigns ran (a loop_value platform world, or ``make demo``'s var/).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import machine, write_section  # noqa: E402


def lift_by_action(home: Path) -> pd.DataFrame:
    import duckdb

    with duckdb.connect(str(home / "warehouse" / "campaign_loop.duckdb"), read_only=True) as con:
        sends = con.execute(
            "select campaign_id, member_id, cast(is_treatment as int) as treatment, "
            "cast(is_converted as int) as linked from marts.fct_campaign_sends"
        ).df()
    outcomes = pd.concat(pd.read_parquet(p, columns=["member_id", "campaign_id", "action", "purchased"])
                         for p in sorted((home / "truth" / "outcomes").glob("*.parquet")))
    rows = sends.merge(outcomes.dropna(subset=["campaign_id"]), on=["member_id", "campaign_id"], how="inner")
    rows["true"] = rows["purchased"].astype(int)
    arms = rows.groupby(["action", "treatment"]).agg(n=("linked", "size"), linked=("linked", "mean"),
                                                     true=("true", "mean")).unstack("treatment")
    out = pd.DataFrame({
        "treated": arms[("n", 1)].fillna(0).astype(int), "control": arms[("n", 0)].fillna(0).astype(int),
        "measured_lift": arms[("linked", 1)] - arms[("linked", 0)],
        "true_lift": arms[("true", 1)] - arms[("true", 0)],
        "control_link_rate": arms[("linked", 0)] / arms[("true", 0)],
        "treated_link_rate": arms[("linked", 1)] / arms[("true", 1)],
    })
    out["bias"] = out["measured_lift"] - out["true_lift"]
    return out.dropna(subset=["measured_lift"]).sort_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--min-control", type=int, default=300, help="Skip actions with a smaller control arm.")
    parser.add_argument("--write", action="store_true", help="Append the table to bench/RESULTS.md.")
    args = parser.parse_args()
    table = lift_by_action(args.home)
    table = table[table["control"] >= args.min_control]
    coupon = table.index.str.startswith(("pct", "amount", "free"))
    lines = ["| action | treated | control | measured lift | true lift | bias | control link rate | treated link rate |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for action, r in table.iterrows():
        lines.append(f"| {action} | {int(r['treated']):,} | {int(r['control']):,} | {r['measured_lift']:+.4f} | "
                     f"{r['true_lift']:+.4f} | {r['bias']:+.4f} | {r['control_link_rate']:.2f} | {r['treated_link_rate']:.2f} |")
    summary = (f"Mean bias (measured minus true lift): coupon actions {table.loc[coupon, 'bias'].mean():+.4f}, "
               f"message-only actions {table.loc[~coupon, 'bias'].mean():+.4f}.")
    text = "\n".join([
        f"Command: `.venv/bin/python bench/linkage_bias.py --home {args.home} --write`  ",
        f"Machine: {machine()}  ",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; every designed and business-as-usual assignment in that home "
        f"(actions with at least {args.min_control} in control)",
        "", *lines, "", summary,
    ])
    print(text)
    if args.write:
        write_section(text, "## Linkage bias: what measuring on linked purchases does to a lift (issue 5)")


if __name__ == "__main__":
    main()
