"""What the oracle's knowledge of each latent trait is worth (issue 5).

    .venv/bin/python bench/oracle_knowledge.py --home var --customers 20000 --cycles 3,4,5 --write

The oracle plans with each customer's true uplift, which the simulator derives from latent traits:
the response class (persuadable, sleeping dog, ...), the size of a persuadable's lift, and the affinity
for each channel. This benchmark takes that knowledge away one trait at a time and plans again with the
same optimiser (same budget and rules, true baseline and spend, no exploration), valuing every plan by
the true effects:

* a trait "unknown" is replaced by its population mean (lift size, channel affinity = 1);
* "class from traits" replaces the class by its probabilities given the traits the world ties to
  observable behaviour (``sim.world.class_probabilities``), sure things still known: the most that a
  perfect reading of behaviour can tell about who responds;
* "class from features" ranks the candidates by their class's probabilities as a classifier of the
  warehouse's model features (``ml.features.scoring_frame`` at the cycle's start) predicts them out of
  fold, fitted on the true class (lift size, affinity and price sensitivity unknown), each action's
  level shifted to its true average effect: what the platform's features add to perfectly measured
  averages, at most, since it is fitted on what no model trained on campaign outcomes sees;
* "average effects known" gives every customer each action's true average effect over the candidates:
  what perfectly measured per-action averages (the platform's prior, ``ml.score.uplift_prior``) are worth.
  Every row plans over the oracle's candidates, the members alive at the cycle's start: a platform that
  cannot tell who dropped out (a fifth of members) also spends on them, so it reaches less;
* "average effects, dropouts unknown" plans over every member, alive or not, each action at its true mean over
  them all: what the platform's measured averages are (its candidates are every member; P(alive) from
  behaviour, which the features reflect, does not separate the dropped out well enough to exclude them);
  "bounced channels closed too" adds what the platform knows of deliverability (``bounced_<channel>``: the
  newest send on the channel bounced), which the oracle's true uplift already zeroes;
  "preference from opens" then scales each action's mean by the member's channel preference as the
  platform reads it from the warehouse's sends and opens (``ml.engagement.channel_preference``, all of
  it: weight 1), what the world's opens (which follow channel affinity since 8a84973) tell;
* "affinity from k opens" gives every customer k past sends on each channel, opens following the
  channel affinity as in the world; affinity is then the posterior mean given those opens (sms has no
  opens: unknown). It asks what a longer campaign history than the loop's would be worth.

Needs a home whose cycles were simulated (``make demo``, or a loop_value world).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import home_world, write_section  # noqa: E402

People = dict[str, np.ndarray]
OPEN_HISTORY = (4, 26)  # past sends per channel in the "affinity from k opens" rows
DROPOUTS_UNKNOWN = "average effects, dropouts unknown"
BOUNCES_CLOSED = "the same, bounced channels closed too"
PREFERENCE = "the same, preference from opens"


def uplifts(people: People, base: np.ndarray) -> pd.DataFrame:
    from campaign_loop.actions import ACTIONS
    from sim.behaviour import uplift

    return pd.DataFrame({
        f"uplift__{a.name}": uplift(people, base, a.offer.offer_type, a.offer.offer_value, a.channel) for a in ACTIONS
    })


def class_mixture(people: People, base: np.ndarray, persuadable: np.ndarray, sleeping_dog: np.ndarray) -> pd.DataFrame:
    """E[uplift] of each person were they persuadable or a sleeping dog with these probabilities."""
    from sim.world import PERSUADABLE, SLEEPING_DOG

    n = len(base)
    gain = uplifts({**people, "response_class": np.full(n, PERSUADABLE, dtype=np.int8)}, base)
    harm = uplifts({**people, "response_class": np.full(n, SLEEPING_DOG, dtype=np.int8)}, base)
    return gain.mul(persuadable, axis=0) + harm.mul(sleeping_dog, axis=0)


def class_from_traits(people: People, base: np.ndarray) -> pd.DataFrame:
    """E[uplift] over the response class given the observable-linked traits (sure things known)."""
    from sim.world import SURE_THING, class_probabilities

    expected = class_mixture(people, base, *class_probabilities(people))
    return expected.mul(people["response_class"] != SURE_THING, axis=0)


def class_from_features(people: People, base: np.ndarray, at: np.ndarray, x: pd.DataFrame) -> pd.DataFrame:
    """E[uplift] of the candidates ``at`` over the class that a classifier of their features ``x`` predicts
    out of fold, fitted on the true class; lift, affinity and price sensitivity at their population means,
    each action's mean over the candidates shifted to its true one (so that only the ranking is the features')."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import cross_val_predict

    from sim.world import PERSUADABLE, SLEEPING_DOG

    known = no_affinity(mean_lift(people))
    known = {**known, "price_sens": np.full_like(known["price_sens"], known["price_sens"].mean())}
    response_class = people["response_class"][at]
    model = HistGradientBoostingClassifier(max_iter=150, min_samples_leaf=200, random_state=0)
    proba = cross_val_predict(model, x.to_numpy(float), response_class, cv=3, method="predict_proba")
    classes = np.unique(response_class)  # cross_val_predict's column order
    persuadable, sleeping_dog = np.zeros(len(base)), np.zeros(len(base))
    persuadable[at] = proba[:, classes == PERSUADABLE].sum(axis=1)
    sleeping_dog[at] = proba[:, classes == SLEEPING_DOG].sum(axis=1)
    expected = class_mixture(known, base, persuadable, sleeping_dog).iloc[at].reset_index(drop=True)
    # Population means of lift, affinity and price sensitivity do not give the average of their product.
    return expected - expected.mean() + uplifts(people, base).iloc[at].mean().to_numpy()


def mean_lift(people: People) -> People:
    return {**people, "lift": np.full_like(people["lift"], people["lift"].mean())}


def no_affinity(people: People) -> People:
    from campaign_loop.config import CHANNELS

    return {**people, **{f"aff_{c}": np.ones_like(people[f"aff_{c}"]) for c in CHANNELS}}


def affinity_from_opens(people: People, sends: int, rng: np.random.Generator) -> People:
    """Posterior-mean affinity after ``sends`` sends per channel whose opens followed the affinity."""
    from campaign_loop.config import CHANNELS
    from sim.campaigns import OPEN_FACTOR

    out = dict(people)
    for c in CHANNELS:
        affinity = people[f"aff_{c}"].astype(float)
        if OPEN_FACTOR[c] == 0:
            out[f"aff_{c}"] = np.ones_like(people[f"aff_{c}"])
            continue
        grid = np.quantile(affinity, np.linspace(0.005, 0.995, 80))  # the population is the prior
        rate = people["open_prop"].astype(float) * OPEN_FACTOR[c]
        opens = rng.binomial(sends, np.clip(rate * affinity, 0.0, 1.0))
        q = np.clip(rate[:, None] * grid[None, :], 1e-9, 1 - 1e-9)
        loglik = opens[:, None] * np.log(q) + (sends - opens)[:, None] * np.log1p(-q)
        weight = np.exp(loglik - loglik.max(axis=1, keepdims=True))
        out[f"aff_{c}"] = ((weight * grid).sum(axis=1) / weight.sum(axis=1)).astype(np.float32)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--cycles", default="3,4,5")
    parser.add_argument("--budget", type=float, default=None, help="the campaign budget (default: the settings')")
    parser.add_argument("--write", action="store_true", help="replace the table in bench/RESULTS.md")
    args = parser.parse_args()

    from campaign_loop.actions import ACTIONS
    from campaign_loop.config import load_settings
    from ml import engagement, features
    from sim import oracle

    settings = load_settings(home=args.home, customers=args.customers, budget=args.budget)
    rng = np.random.default_rng(settings.seed)
    Variant = Callable[[People, np.ndarray], pd.DataFrame]  # people, baseline -> uplift per person
    # people, baseline, the candidates' rows and their features -> uplift per candidate
    Planned = Callable[[People, np.ndarray, np.ndarray, pd.DataFrame], pd.DataFrame]

    def per_person(variant: Variant) -> Planned:
        return lambda p, b, at, x: variant(p, b).iloc[at].reset_index(drop=True)

    def averaged(p: People, b: np.ndarray, at: np.ndarray, x: pd.DataFrame) -> pd.DataFrame:
        """Each action's true mean over the candidates, for every candidate."""
        known = uplifts(p, b).iloc[at]
        return pd.DataFrame({c: np.full(len(known), known[c].mean()) for c in known})

    variants: dict[str, Planned] = {
        "oracle": per_person(uplifts),
        "lift size unknown": per_person(lambda p, b: uplifts(mean_lift(p), b)),
        "affinity unknown": per_person(lambda p, b: uplifts(no_affinity(p), b)),
        "class known only": per_person(lambda p, b: uplifts(no_affinity(mean_lift(p)), b)),
        "class from traits": per_person(class_from_traits),
        "class from traits, lift and affinity unknown": per_person(
            lambda p, b: class_from_traits(no_affinity(mean_lift(p)), b)),
        "class from features": class_from_features,
        "average effects known": averaged,
        **{f"the same, affinity from {k} opens": per_person(lambda p, b, k=k: class_from_traits(
            affinity_from_opens(mean_lift(p), k, rng), b)) for k in OPEN_HISTORY},
    }
    names = [*variants, DROPOUTS_UNKNOWN, BOUNCES_CLOSED, PREFERENCE]
    rows: list[dict[str, object]] = []
    for cycle in (int(c) for c in args.cycles.split(",")):
        key = settings.cycle_key(cycle)
        effects = pd.read_parquet(settings.truth_dir / "effects" / f"{key}.parquet")
        people, base = oracle.people_at_start(settings, cycle)
        customers = oracle.oracle_customers(settings, cycle, effects)
        person = oracle.by_member(effects)["person_id"]
        at = person.reindex(customers["member_id"]).to_numpy(np.int64)
        row: dict[str, object] = {"cycle": cycle, "cycle_id": key}
        scoring = features.scoring_frame(settings.warehouse_path, as_of=settings.cycle_start(cycle))
        x = oracle.by_member(scoring).reindex(customers["member_id"])[list(features.FEATURES)]

        def value(planned: pd.DataFrame, cycle: int = cycle, effects: pd.DataFrame = effects) -> float:
            plan = oracle.oracle_plan(settings, cycle, planned).rows
            treated = plan[plan["arm"] == "treatment"]
            return oracle.plan_value(effects, treated["member_id"], treated["offer"] + "__" + treated["channel"])

        for name, variant in variants.items():
            known = variant(people, base, at, x)
            row[name] = value(customers.assign(**{c: known[c].to_numpy() for c in known}))
        everyone = oracle.oracle_customers(settings, cycle, effects.drop(columns="alive"))
        columns = [c for c in everyone if c.startswith("uplift__")]
        everyone = everyone.assign(**{c: everyone[c].mean() for c in columns})
        row[DROPOUTS_UNKNOWN] = value(everyone)
        bounced = oracle.by_member(scoring).reindex(everyone["member_id"])[list(features.BOUNCED_COLUMNS)]
        closed = everyone.assign(**{c: bounced[c].fillna(False).to_numpy(bool) for c in bounced})
        row[BOUNCES_CLOSED] = value(closed)
        preference = engagement.channel_preference(oracle.by_member(scoring)).reindex(everyone["member_id"]).fillna(1.0)
        row[PREFERENCE] = value(closed.assign(**{
            f"uplift__{a.name}": closed[f"uplift__{a.name}"] * preference[engagement.preference_column(a.channel)].to_numpy()
            for a in ACTIONS}))
        rows.append(row)
        print(f"cycle {cycle}: " + ", ".join(f"{k} {v:,.1f}" for k, v in row.items() if k in names))  # noqa: T201

    table = [
        "| cycle | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
        *(f"| {r['cycle']} ({r['cycle_id']}) | " + " | ".join(
            f"{r[n]:,.1f} ({r[n] / r['oracle']:.2f})" for n in names) + " |" for r in rows),
    ]
    text = "\n".join([
        f"Command: `.venv/bin/python bench/oracle_knowledge.py --home {args.home} --customers {args.customers} "
        f"--cycles {args.cycles}{f' --budget {args.budget:g}' if args.budget is not None else ''} --write`  ",
        *home_world(settings, args.customers),
        "",
        *table,
        "",
        "Incremental profit by the truth (ratio to the oracle) of the oracle's optimiser on uplifts that know "
        "less: a trait unknown is its population mean; class from traits is the class's probability given the "
        "traits behaviour reflects, sure things known; class from features ranks by the class's probability as a "
        "classifier of the warehouse features fitted on the truth predicts it (lift, affinity and price "
        "sensitivity unknown), each action at its true average; average effects known gives everyone each "
        "action's true mean; affinity from k opens gives everyone k past sends per channel, opens following "
        "affinity; dropouts unknown plans over every member at each action's true "
        "mean over them all, bounced channels closed also closes each member's channels whose newest "
        "send bounced, and preference from opens scales each action's mean by the member's preference for its "
        "channel as the warehouse's opens show it.",
    ])
    print(text)  # noqa: T201
    if args.write:
        write_section(text, "## Oracle knowledge: what each latent trait is worth (issue 5)")


if __name__ == "__main__":
    main()
