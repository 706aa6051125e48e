"""Score every customer with the champions: the input frame of ``ml/decide/``.

:func:`score_customers` reads the features as of the newest as-of date (the start of the cycle being
designed), loads each champion through its alias URI ``models:/<name>@champion`` and returns one row
per customer with exactly the columns decisioning reads (:data:`DECIDE_COLUMNS`) plus a few
informative extras (``p_churn``, ``p_alive``, ``clv_52w``, ``uplift_margin__*``, ``scored_by__*``).

Fallbacks when a model has no champion yet (first cycles, or every challenger failed its gate):

* ``uplift``: 0 for every action. Zero, not NaN: decisioning treats NaN as "not allowed" but a finite
  zero as allowed and worthless, so the optimiser sends nothing on its own account while the
  exploration share still tries every action, which is what produces the first uplift evidence.
  A champion that does not cover an action yet (too few assignments) gives 0 for it, for the same reason.
  Once campaigns have been measured, each action's average effect (:func:`uplift_prior`, measured
  against every holdout adjusted for features) is the level of its uplift column: the whole column
  without a champion, and with one the champion's predictions re-centred on it (:func:`calibrate_uplift`).
* ``propensity`` (``p_buy``): the CLV champion's expected purchases next cycle as a probability
  ``1 - exp(-E[X])``; without it, the observed next-cycle purchase rate of the newest complete labels.
* ``clv`` (``expected_spend``): the customer's average order value, else the population's.
* ``churn``: NaN (decisioning does not read it).

Each customer's uplift of an action (and its standard error) is then scaled by their preference for the
action's channel, by the slope the randomised assignments measure weighed against a prior of 1
(``ml/engagement.py``; Settings ``channel_preference``); ``preference_<channel>`` and
``preference_weight`` say by how much.

``scored_by__<model>`` says which champion version (or ``fallback``) produced each column group.

``consent_<channel>`` is True (opted in), False (opted out) or missing (``pd.NA``: no consent record for the
member and channel, :func:`mark_unrecorded_consents`), so that decisioning can tell "no consents landed" from
"opted out" and apply Settings ``assume_consent`` to the first only.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from campaign_loop.actions import ACTIONS
from campaign_loop.config import CHANNELS
from campaign_loop.warehouse import read_whole
from ml import engagement, features, loyalty, tracking
from ml.arviz_stamp import settle_arviz_stamp
from ml.registry import champion_uri, champion_version

if TYPE_CHECKING:
    from campaign_loop.config import Settings

UPLIFT_COLUMNS: tuple[str, ...] = tuple(f"uplift__{a.name}" for a in ACTIONS)
DECIDE_COLUMNS: tuple[str, ...] = (
    "customer_id", "member_id", *features.CONSENT_COLUMNS, *features.BOUNCED_COLUMNS, "unsubscribed_recently",
    "contacts_last_30d", "segment", "p_buy", "expected_spend", "margin_rate", *UPLIFT_COLUMNS,
)
FALLBACK = "fallback"
log = logging.getLogger(__name__)


def load_champions(names: tuple[str, ...] = ("churn", "propensity", "clv", "uplift")) -> dict[str, tuple[Any, str]]:
    """``name -> (model, version)`` for every model that has a champion, loaded by ``models:/<name>@champion``."""
    import mlflow

    client = mlflow.MlflowClient()
    loaded: dict[str, tuple[Any, str]] = {}
    for name in names:
        version = champion_version(name, client)
        if version is not None:
            settle_arviz_stamp()  # a CLV champion unpickles pymc-marketing
            loaded[name] = (mlflow.sklearn.load_model(champion_uri(name)), str(version.version))
    return loaded


def score_customers(settings: Settings, schema: str = features.DEFAULT_SCHEMA) -> pd.DataFrame:
    """The ml/decide/ input frame for the newest as-of date (see the module docstring for fallbacks)."""
    import mlflow

    if not mlflow.is_tracking_uri_set():
        tracking.configure(settings)
    frame = features.scoring_frame(settings.warehouse_path, schema=schema)
    champions = load_champions()
    prior: pd.DataFrame | None = None
    weight: float | None = None  # not measured: no randomised evidence yet, or channel_preference is off
    try:
        assignments = features.uplift_frame(settings.warehouse_path, schema=schema)
        above = above_baseline(assignments)
        prior = uplift_prior(assignments, above=above)
    except Exception:  # noqa: BLE001 - no campaign data yet (empty marts): the prior is simply absent
        prior = None
    if settings.channel_preference and prior is not None and not prior.empty:
        prior, weight = prior_with_preference(assignments, above, prior)
    scores = score_frame(frame, champions, fallback_rate=lambda: recent_purchase_rate(settings, schema), prior=prior,
                         preference_weight=weight)
    scores = mark_unrecorded_consents(scores, consent_records(settings.warehouse_path, schema))
    return loyalty.attach_value_tiers(scores, loyalty.value_tiers(settings.warehouse_path, schema))


def consent_records(warehouse_path: Path | str, schema: str = features.DEFAULT_SCHEMA) -> pd.DataFrame | None:
    """Per customer, whether a consent record exists for their member ID on each channel
    (``recorded_<channel>``), from ``dim_customers`` (whose consent flags stay NULL without a record, where the
    features mart reads them as False). None when the schema has no ``dim_customers`` (the model tests'
    synthetic marts): every flag then counts as recorded, which is the rule without ``assume_consent``."""
    warehouse = features.warehouse_of(warehouse_path)
    if "dim_customers" not in warehouse.tables(schema):
        log.warning("%s.dim_customers is absent: consent flags count as recorded (assume_consent has no effect)",
                    schema)
        return None
    consents = features.read(warehouse, "dim_customers", ["customer_id", *(f"consent_{c}" for c in CHANNELS)], schema)
    return pd.DataFrame({"customer_id": consents["customer_id"],
                         **{f"recorded_{c}": consents[f"consent_{c}"].notna().to_numpy() for c in CHANNELS}})


def mark_unrecorded_consents(scores: pd.DataFrame, records: pd.DataFrame | None) -> pd.DataFrame:
    """``scores`` with ``consent_<channel>`` missing (``pd.NA``) where ``records`` (:func:`consent_records`)
    says no consent record exists; customers ``records`` does not list keep their flags."""
    out = scores.copy()
    if records is None:
        return out
    by_customer = records.drop_duplicates("customer_id").set_index("customer_id")
    for channel in CHANNELS:
        recorded = out["customer_id"].map(by_customer[f"recorded_{channel}"]).astype("boolean").fillna(True).astype(bool)
        column = out[f"consent_{channel}"].astype("boolean")
        out[f"consent_{channel}"] = column.mask(~recorded.to_numpy())
    return out


PRIOR_STRENGTH = 2_000.0  # pseudo-assignments of the pooled effect added to each action's own evidence
BASELINE_FOLDS = 5
# A leaf needs a few conversions at a ~2 % rate; above 10k rows scikit-learn stops on a 10 % validation
# share (seeded), which keeps the model as smooth as the weak signal allows.
BASELINE_PARAMS: dict[str, Any] = {"max_iter": 150, "learning_rate": 0.05, "min_samples_leaf": 200, "random_state": 0}


def randomised_effect(assignments: pd.DataFrame, mask: pd.Series) -> tuple[float, float]:
    """(treated minus control conversion, its standard error) over the ``mask`` rows of ``assignments``;
    (NaN, inf) unless both arms have rows."""
    t = assignments["treatment"] == 1
    y = assignments["is_converted"].astype(float)
    yt, yc = y[mask & t], y[mask & ~t]
    if len(yt) == 0 or len(yc) == 0:
        return np.nan, np.inf
    pt, pc = yt.mean(), yc.mean()
    # A floor on the rate keeps the standard error honest when an arm has no conversions yet.
    return float(pt - pc), math.sqrt(max(pt, 0.005) * (1 - pt) / len(yt) + max(pc, 0.005) * (1 - pc) / len(yc))


def baseline_conversion(assignments: pd.DataFrame, covariates: tuple[str, ...] = features.FEATURES) -> np.ndarray:
    """Each assignment's conversion without a contact, predicted from its features and date by a model of
    the holdout rows alone, cross-fitted (no holdout row is predicted by a model that saw it).

    With fewer holdout rows than folds, or no conversion among them, it is their mean rate.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import KFold

    y = assignments["is_converted"].to_numpy(dtype=float)
    control = assignments["treatment"].to_numpy() == 0
    if control.sum() < BASELINE_FOLDS or len(np.unique(y[control])) < 2:
        return np.full(len(y), y[control].mean() if control.any() else 0.0)
    day = pd.to_datetime(assignments["as_of_date"]).map(pd.Timestamp.toordinal).to_numpy(dtype=float)
    x = np.column_stack([assignments[list(covariates)].astype("float64").to_numpy(), day])
    # A covariate without a value in any row says nothing, and scikit-learn's binning raises on it; raised, it
    # cost the scorer its measured prior (score_customers treats a failure here as "no campaign data yet").
    x = x[:, ~np.isnan(x).all(axis=0)]
    predicted = np.empty(len(y))
    for fit_rows, predict_rows in KFold(BASELINE_FOLDS, shuffle=True, random_state=0).split(x):
        fit_rows = fit_rows[control[fit_rows]]
        if len(np.unique(y[fit_rows])) < 2:
            predicted[predict_rows] = y[fit_rows].mean()
            continue
        model = HistGradientBoostingClassifier(**BASELINE_PARAMS).fit(x[fit_rows], y[fit_rows])
        predicted[predict_rows] = model.predict_proba(x[predict_rows])[:, 1]
    return predicted


def above_baseline(assignments: pd.DataFrame, covariates: tuple[str, ...] = features.FEATURES) -> np.ndarray:
    """Each assignment's conversion minus its :func:`baseline_conversion`."""
    return assignments["is_converted"].to_numpy(dtype=float) - baseline_conversion(assignments, covariates)


def uplift_prior(
    assignments: pd.DataFrame, strength: float = PRIOR_STRENGTH, covariates: tuple[str, ...] = features.FEATURES,
    above: np.ndarray | None = None, factor: np.ndarray | None = None,
) -> pd.DataFrame:
    """Per action, the average uplift measured on all randomised assignments so far (every cycle pooled).

    ``assignments``: :func:`ml.features.uplift_frame` rows (``action``, ``treatment``, ``is_converted``,
    ``as_of_date`` and the ``covariates``). The effect of action *a* is the mean conversion above
    :func:`baseline_conversion` of its treated rows minus that of *every* holdout row, not only of
    *a*'s own holdout. The action a customer is planned for is decided from what was known of them
    at the cycle's start and from recorded random draws, and each action's holdout is a random share
    of its planned customers, so the holdouts of all actions, adjusted for features, are a control for
    each: about twelve times the rows of its own holdout, which at a 10 % holdout carries most of the
    estimate's variance (bench/uplift_prior.py measures the difference). The effect is then shrunk
    towards the one pooled over all actions (``strength`` pseudo-rows of it), so an action with few
    sends borrows from the others. The campaign reports keep the plain randomised contrast of each
    action's own arms.

    ``factor``: each assignment's effect relative to its action's level, the channel preference's
    ``1 + weight * (preference - 1)`` (:func:`ml.engagement.preference_factor`). The level is then the
    effect per unit of factor, the action's effect on the average customer: the plans send each action to
    the customers who prefer its channel, so its treated rows' plain mean overstates it for everyone else,
    and the scorer multiplies the level by each customer's factor again.

    Returns one row per catalogue action: ``uplift``, ``sd`` (standard error of the shrunk estimate),
    ``n`` (treated assignments). Empty without both arms. ``above``: :func:`above_baseline`, when the
    caller already has it.
    """
    if assignments.empty or assignments["treatment"].nunique() < 2:
        return pd.DataFrame(columns=["uplift", "sd", "n"])
    above = above_baseline(assignments, covariates) if above is None else above
    factor = np.ones(len(assignments)) if factor is None else np.asarray(factor, dtype=float)
    treated = assignments["treatment"].to_numpy() == 1
    control_mean, control_var = above[~treated].mean(), above[~treated].var() / (~treated).sum()

    def effect(rows: np.ndarray) -> tuple[float, float]:
        # A floor on the variance keeps the standard error honest while an arm has no conversions yet.
        scale = factor[rows].mean()
        return ((above[rows].mean() - control_mean) / scale,
                math.sqrt(max(above[rows].var(), 0.005) / rows.sum() + control_var) / scale)

    pooled, pooled_se = effect(treated)
    rows = {}
    for action in ACTIONS:
        mine = treated & (assignments["action"] == action.name).to_numpy()
        n = int(mine.sum())
        own, own_se = effect(mine) if n else (0.0, 0.0)
        w = n / (n + strength)
        rows[f"uplift__{action.name}"] = {
            "uplift": w * own + (1 - w) * pooled,
            "sd": math.sqrt((w * own_se) ** 2 + ((1 - w) * pooled_se) ** 2),
            "n": n,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def prior_with_preference(
    assignments: pd.DataFrame, above: np.ndarray, prior: pd.DataFrame, rounds: int = 2,
) -> tuple[pd.DataFrame, float]:
    """(the prior's levels per unit of preference factor, the preference weight), from :func:`uplift_prior`'s
    plain levels ``prior``.

    The weight's slope is measured around the levels and the levels are measured per unit of the weight's
    factor, so the two are refined in turn. Two rounds settle them: on six cycles of 100k evidence the second
    moved the weight by 0.07 and a third would move it by 0.008, the levels by under 1 %.
    """
    weight = 0.0
    for _ in range(rounds):
        weight = engagement.preference_weight(assignments, above, prior["uplift"])[0]
        prior = uplift_prior(assignments, above=above, factor=engagement.preference_factor(assignments, weight))
    return prior, weight


def calibrate_uplift(predicted: pd.Series, level: float, spread: float) -> pd.Series:
    """The champion's predictions of one action re-centred on its measured average effect ``level``.

    The model's own level is optimistic where it matters: the optimiser picks the actions it
    overestimates (the winner's curse), while the randomised evidence of every cycle pooled is unbiased.
    So the evidence sets the level and the model only the ranking, its deviations scaled by ``spread``:
    the champion's ``ranking_weight``, how much of its predicted differences the held-out assignments
    confirmed (0 for a ranking they cannot tell from noise, which leaves every customer at the level).
    Rows the champion does not cover (0) get the level.
    """
    covered = predicted != 0.0
    if not covered.any():
        return pd.Series(level, index=predicted.index)
    centred = level + spread * (predicted - predicted[covered].mean())
    return centred.where(covered, level)


def score_frame(
    frame: pd.DataFrame,
    champions: dict[str, tuple[Any, str]],
    fallback_rate: Any = None,
    prior: pd.DataFrame | None = None,
    preference_weight: float | None = 0.0,
) -> pd.DataFrame:
    """Apply loaded champions (``name -> (model, version)``) to a :func:`ml.features.scoring_frame`.

    ``preference_weight`` (:func:`ml.engagement.preference_weight`) scales each customer's effect of an
    action, and its standard error, by ``1 + weight * (preference - 1)`` of the action's channel; None (not
    measured) scales nothing and leaves the ``preference_weight`` column missing, so the plan summary does
    not report a measured weight of 0.
    """
    out = frame.reset_index(drop=True).copy()
    scored_by: dict[str, str] = {}
    expected_next = _score_clv(out, champions, scored_by)
    _score_propensity(out, champions, scored_by, expected_next, fallback_rate)
    if "churn" in champions:
        model, version = champions["churn"]
        out["p_churn"] = np.asarray(model.predict(out), dtype=float)
        scored_by["churn"] = version
    else:
        out["p_churn"] = np.nan
        scored_by["churn"] = FALLBACK
    _score_uplift(out, champions, scored_by, prior)
    _weigh_channel_preference(out, preference_weight)

    for name, source in scored_by.items():
        out[f"scored_by__{name}"] = source
    extras = ["as_of_date", "p_churn", "p_alive", "clv_52w", "preference_weight",
              *(engagement.preference_column(c) for c in CHANNELS),
              *(c for c in out.columns if c.startswith("uplift_sd__")),
              *(c.replace("uplift__", "uplift_margin__") for c in UPLIFT_COLUMNS),
              *(f"scored_by__{n}" for n in scored_by)]
    return out[[*DECIDE_COLUMNS, *extras]]


def _score_clv(out: pd.DataFrame, champions: dict[str, tuple[Any, str]], scored_by: dict[str, str]) -> Any:
    """P(alive), 52-week CLV and expected spend into ``out``; returns the expected purchases next cycle (None
    without a CLV champion, whose fallback spend is each customer's average order value)."""
    if "clv" in champions:
        model, version = champions["clv"]
        clv_scores = model.predict(out)
        out["p_alive"] = clv_scores["p_alive"].to_numpy()
        out["clv_52w"] = clv_scores["clv_52w"].to_numpy()
        out["expected_spend"] = clv_scores["expected_spend"].to_numpy()
        scored_by["clv"] = version
        return clv_scores["expected_purchases_next_cycle"].to_numpy()
    population_aov = float(out["avg_order_value"].mean()) if out["avg_order_value"].notna().any() else 0.0
    out["p_alive"] = np.nan
    out["clv_52w"] = np.nan
    out["expected_spend"] = out["avg_order_value"].fillna(population_aov if math.isfinite(population_aov) else 0.0)
    scored_by["clv"] = FALLBACK
    return None


def _score_propensity(out: pd.DataFrame, champions: dict[str, tuple[Any, str]], scored_by: dict[str, str],
                      expected_next: Any, fallback_rate: Any) -> None:
    """``p_buy``: the propensity champion's, else from the CLV champion's expected purchases, else the base rate."""
    if "propensity" in champions:
        model, version = champions["propensity"]
        out["p_buy"] = np.asarray(model.predict(out), dtype=float)
        scored_by["propensity"] = version
    elif expected_next is not None:
        out["p_buy"] = 1.0 - np.exp(-np.asarray(expected_next, dtype=float))
        scored_by["propensity"] = f"{FALLBACK}:clv"
    else:
        rate = fallback_rate() if callable(fallback_rate) else float(fallback_rate or 0.0)
        out["p_buy"] = float(rate)
        scored_by["propensity"] = f"{FALLBACK}:base_rate"


def _score_uplift(out: pd.DataFrame, champions: dict[str, tuple[Any, str]], scored_by: dict[str, str],
                  prior: pd.DataFrame | None) -> None:
    """Every action's uplift (and margin uplift): the champion's ranking around the prior's measured level
    (with its standard error), the prior alone for an action the champion does not cover, else 0."""
    ranking_weight = 0.0
    if "uplift" in champions:
        model, version = champions["uplift"]
        ranking_weight = float(getattr(model, "ranking_weight", 0.0))
        predicted = model.predict(out)
        for column in predicted.columns:
            # An action without evidence yet is worth 0 (explorable), not NaN (forbidden).
            out[column] = predicted[column].fillna(0.0).to_numpy()
        scored_by["uplift"] = version
    else:
        scored_by["uplift"] = FALLBACK
    has_prior = prior is not None and not prior.empty
    for column in UPLIFT_COLUMNS:
        if has_prior and column in prior.index and math.isfinite(float(prior.loc[column, "uplift"])):
            # Without a champion (or for an action it does not cover): the measured average effect of
            # the action, with its standard error for Thompson sampling.
            level = float(prior.loc[column, "uplift"])
            if column not in out.columns:
                out[column] = level
            else:
                out[column] = calibrate_uplift(out[column], level, ranking_weight)
            out[column.replace("uplift__", "uplift_sd__")] = float(prior.loc[column, "sd"])
        if column not in out.columns:
            out[column] = 0.0
        margin_column = column.replace("uplift__", "uplift_margin__")
        if margin_column not in out.columns:
            out[margin_column] = 0.0


def _weigh_channel_preference(out: pd.DataFrame, preference_weight: float | None) -> None:
    """Each customer's channel preferences, and their effects (and standard errors) scaled by them."""
    preference = engagement.channel_preference(out)
    for channel in CHANNELS:
        out[engagement.preference_column(channel)] = preference[engagement.preference_column(channel)].to_numpy()
    if preference_weight is not None and preference_weight > 0:
        for action in ACTIONS:
            factor = 1.0 + preference_weight * (out[engagement.preference_column(action.channel)] - 1.0)
            for column in (f"uplift__{action.name}", f"uplift_sd__{action.name}"):
                if column in out.columns:
                    out[column] = out[column] * factor
    out["preference_weight"] = np.nan if preference_weight is None else preference_weight


def recent_purchase_rate(settings: Settings, schema: str) -> float:
    """Next-cycle purchase rate of the newest as-of date with complete labels (0 if none yet)."""
    warehouse = features.warehouse_of(settings.warehouse_path)
    complete = read_whole(warehouse, "fct_customer_labels", ["as_of_date"], schema=schema,
                          where=[("label_complete_next_cycle", "=", True)], distinct=True)
    if complete.empty:
        return 0.0
    newest = pd.Timestamp(complete["as_of_date"].max()).date()
    labels = read_whole(warehouse, "fct_customer_labels", ["purchased_next_cycle"], schema=schema,
                        where=[("as_of_date", "=", newest)])
    rate = pd.to_numeric(labels["purchased_next_cycle"], errors="coerce").astype("float64").mean()
    return 0.0 if pd.isna(rate) else float(rate)
