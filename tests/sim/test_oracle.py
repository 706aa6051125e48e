"""The oracle plays by the platform's rules: its contact history counts against the same frequency cap."""

from __future__ import annotations

import pandas as pd

from sim.oracle import oracle_customers, recent_contacts


def _sends(settings, cycles: range) -> pd.Series:
    frames = [pd.read_parquet(settings.truth_dir / "outcomes" / f"{settings.cycle_key(k)}.parquet")
              for k in cycles]
    rows = pd.concat(frames)
    return rows.loc[(rows["arm"] == "treatment") & rows["member_id"].notna(), "member_id"].value_counts()


def test_the_oracle_sees_the_contacts_of_the_last_30_days(clean_world) -> None:
    settings, _ = clean_world
    customers = oracle_customers(settings, 2)
    expected = customers["member_id"].map(_sends(settings, range(0, 2))).fillna(0).astype(int)
    assert expected.max() >= 1
    assert customers["contacts_last_30d"].tolist() == expected.tolist()


def test_contacts_older_than_30_days_do_not_count(clean_world) -> None:
    settings, _ = clean_world
    members = pd.Series(sorted(_sends(settings, range(0, 3)).index))
    # Cycle 6 starts 42 days in: cycle 2 (day 14) is inside its window, cycles 0 and 1 are not.
    counts = recent_contacts(settings, 6, members)
    assert counts.tolist() == members.map(_sends(settings, range(2, 3))).fillna(0).astype(int).tolist()
    assert recent_contacts(settings, 3, members).sum() == _sends(settings, range(0, 3)).sum()
