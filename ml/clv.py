"""Customer lifetime value: BG/NBD for purchase counts, Gamma-Gamma for spend per purchase.

Input is an RFM summary, one row per customer: ``customer_id``, ``frequency`` (repeat purchase days),
``recency`` (first to last purchase), ``T`` (first purchase to calibration end) and ``monetary_value``
(mean of the repeat purchases), all durations in the summary's ``unit``: ``"W"`` (weeks, the default,
as in Fader, Hardie & Lee 2005) or ``"D"`` (days). :func:`rfm_summary` builds it from a transaction log.

Both models are fitted by MAP with flat priors, which is maximum likelihood: the library's default
BG/NBD priors (Weibull on ``r``/``alpha``, Pareto-Uniform on ``a``/``b``) pull ``a`` from 0.793 to
0.706 on CDNOW, far outside the 1 % the published estimates are reproduced to.

``pymc_marketing`` is imported inside the functions that need it: it pulls in PyMC and takes
seconds, and DAG parsing imports this module.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ml.arviz_stamp import settle_arviz_stamp

if TYPE_CHECKING:
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel

TimeUnit = Literal["D", "W"]
DAYS_PER_UNIT: dict[str, int] = {"D": 1, "W": 7}
RFM_COLUMNS: tuple[str, ...] = ("customer_id", "frequency", "recency", "T", "monetary_value")
BGNBD_PARAMS: tuple[str, ...] = ("r", "alpha", "a", "b")
GAMMA_GAMMA_PARAMS: tuple[str, ...] = ("p", "q", "v")

# Published CDNOW anchor: Fader, Hardie & Lee (2005) for BG/NBD, Fader & Hardie (2013) note 025 for Gamma-Gamma.
CDNOW_PUBLISHED: dict[str, float] = {
    "r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "p": 6.25, "q": 3.74, "v": 15.44,
}
CDNOW_CALIBRATION_END = date(1997, 9, 30)
CDNOW_HOLDOUT_END = date(1998, 6, 30)
CDNOW_HOLDOUT_ACTUAL = 1882  # repeat transactions in weeks 40-78, as published


# --------------------------------------------------------------------------------------------- data


def rfm_summary(
    transactions: pd.DataFrame,
    calibration_end: date | datetime | str,
    *,
    unit: TimeUnit = "W",
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
) -> pd.DataFrame:
    """RFM summary as of ``calibration_end`` (inclusive), in lifetimes' ``summary_data_from_transaction_data`` semantics.

    Purchases are counted per customer-day (same-day purchases are one transaction, amounts summed), as
    lifetimes does with ``freq="D"`` and ``freq_multiplier=7`` for weeks. Written in pandas rather than
    calling lifetimes because lifetimes is a dev-only, unmaintained dependency.
    """
    end = pd.Timestamp(calibration_end).normalize()
    days = _purchase_days(transactions, customer_col, date_col, amount_col)
    days = days[days["day"] <= end]
    grouped = days.groupby("customer_id", sort=True)
    first = grouped["day"].min()
    last = grouped["day"].max()
    count = grouped["day"].size()
    per_unit = DAYS_PER_UNIT[unit]
    # The first purchase day is excluded from the mean: it is the acquisition, not a repeat purchase.
    is_first = days["day"].to_numpy() == days["customer_id"].map(first).to_numpy()
    repeat_mean = days.loc[~is_first].groupby("customer_id")["amount"].mean()
    summary = pd.DataFrame(
        {
            "frequency": (count - 1).astype(float),
            "recency": (last - first).dt.days / per_unit,
            "T": (end - first).dt.days / per_unit,
            "monetary_value": repeat_mean.reindex(first.index).fillna(0.0),
        }
    )
    return summary.rename_axis("customer_id").reset_index()[list(RFM_COLUMNS)]


def repeat_purchases_between(
    transactions: pd.DataFrame,
    start_exclusive: date | datetime | str,
    end_inclusive: date | datetime | str,
    *,
    customer_col: str = "customer_id",
    date_col: str = "date",
) -> pd.Series:
    """Purchase days per customer in ``(start_exclusive, end_inclusive]``: the holdout actuals."""
    days = _purchase_days(transactions, customer_col, date_col, None)
    start, end = pd.Timestamp(start_exclusive).normalize(), pd.Timestamp(end_inclusive).normalize()
    window = days[(days["day"] > start) & (days["day"] <= end)]
    return window.groupby("customer_id").size().rename("holdout_purchases")


def _purchase_days(
    transactions: pd.DataFrame, customer_col: str, date_col: str, amount_col: str | None
) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": transactions[customer_col].to_numpy(),
            "day": pd.to_datetime(transactions[date_col]).dt.normalize().to_numpy(),
            "amount": transactions[amount_col].to_numpy() if amount_col else 0.0,
        }
    )
    return frame.groupby(["customer_id", "day"], as_index=False, sort=True)["amount"].sum()


# ---------------------------------------------------------------------------------------------- fit


def flat_bgnbd_config() -> dict[str, Any]:
    """BG/NBD model_config with flat priors on r, alpha, a, b, so MAP is the maximum-likelihood estimate.

    Giving ``a`` and ``b`` directly switches the library off its hierarchical phi/kappa parameterisation.
    """
    settle_arviz_stamp()
    from pymc_extras.prior import Prior

    return {name: Prior("HalfFlat") for name in BGNBD_PARAMS}


def flat_gamma_gamma_config() -> dict[str, Any]:
    """Gamma-Gamma model_config with flat priors (the library default in 0.19; explicit so an upgrade can't move it)."""
    settle_arviz_stamp()
    from pymc_extras.prior import Prior

    return {name: Prior("HalfFlat") for name in GAMMA_GAMMA_PARAMS}


def fit_bgnbd(summary: pd.DataFrame, *, model_config: dict[str, Any] | None = None) -> BetaGeoModel:
    """Fit BG/NBD by MAP (flat priors unless ``model_config`` says otherwise)."""
    settle_arviz_stamp()
    from pymc_marketing.clv import BetaGeoModel

    _check_summary(summary, ("customer_id", "frequency", "recency", "T"))
    model = BetaGeoModel(model_config=model_config if model_config is not None else flat_bgnbd_config())
    with warnings.catch_warnings():
        # MAP idata lacks sample stats; arviz warns about it on every conversion.
        warnings.simplefilter("ignore", UserWarning)
        model.fit(data=summary[["customer_id", "frequency", "recency", "T"]].copy(), method="map", progressbar=False)
    return model


def fit_gamma_gamma(summary: pd.DataFrame, *, model_config: dict[str, Any] | None = None) -> GammaGammaModel:
    """Fit Gamma-Gamma by MAP on the customers with at least one repeat purchase of positive value.

    One-time buyers carry no repeat-spend information (their ``monetary_value`` is 0), so they are left
    out of the fit, as in Fader & Hardie (2013); they are still scored, at the population mean.
    """
    settle_arviz_stamp()
    from pymc_marketing.clv import GammaGammaModel

    _check_summary(summary, ("customer_id", "frequency", "monetary_value"))
    repeaters = summary.loc[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    if repeaters.empty:
        raise ValueError("Gamma-Gamma needs at least one customer with a repeat purchase")
    model = GammaGammaModel(model_config=model_config if model_config is not None else flat_gamma_gamma_config())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model.fit(
            data=repeaters[["customer_id", "frequency", "monetary_value"]].copy(), method="map", progressbar=False
        )
    return model


@dataclass(frozen=True)
class ClvModel:
    """A fitted BG/NBD + Gamma-Gamma pair and what a run should log about it."""

    bgnbd: BetaGeoModel
    gamma_gamma: GammaGammaModel
    unit: TimeUnit
    params: dict[str, float]
    fit_seconds: dict[str, float] = field(default_factory=dict)


def fit_clv(summary: pd.DataFrame, *, unit: TimeUnit = "W") -> ClvModel:
    """Fit both models on one RFM summary; ``unit`` only labels the result (the summary is already in it)."""
    started = time.perf_counter()
    bgnbd = fit_bgnbd(summary)
    bgnbd_seconds = time.perf_counter() - started
    started = time.perf_counter()
    gamma_gamma = fit_gamma_gamma(summary)
    gg_seconds = time.perf_counter() - started
    return ClvModel(
        bgnbd=bgnbd,
        gamma_gamma=gamma_gamma,
        unit=unit,
        params={**map_params(bgnbd, BGNBD_PARAMS), **map_params(gamma_gamma, GAMMA_GAMMA_PARAMS)},
        fit_seconds={"bgnbd": bgnbd_seconds, "gamma_gamma": gg_seconds},
    )


def map_params(model: BetaGeoModel | GammaGammaModel, names: tuple[str, ...]) -> dict[str, float]:
    """The point estimates of a MAP fit as plain floats (one chain, one draw)."""
    posterior = model.fit_result
    return {name: float(posterior[name].mean()) for name in names}


# ---------------------------------------------------------------------------------------- predict


def predict_clv(
    model: ClvModel,
    summary: pd.DataFrame,
    *,
    horizon: float,
    discount_rate: float = 0.0,
) -> pd.DataFrame:
    """Per customer: P(alive), expected purchases and spend per purchase over ``horizon``, and CLV.

    ``horizon`` and ``discount_rate`` (per period) are in the model's unit. With a discount rate the
    horizon is split into whole periods and each period's incremental purchases are discounted at its
    end; the library's own CLV helper is not used because it measures the horizon in months
    whatever the data's unit.
    """
    _check_summary(summary, RFM_COLUMNS)
    data = summary[list(RFM_COLUMNS)].copy()
    p_alive = _squeeze(model.bgnbd.expected_probability_alive(data=data))
    purchases = _expected_purchases(model.bgnbd, data, horizon)
    spend = _squeeze(model.gamma_gamma.expected_customer_spend(data=data))
    if discount_rate == 0.0:
        clv = purchases * spend
    else:
        steps = np.arange(1, int(np.ceil(horizon)) + 1, dtype=float)
        steps[-1] = horizon
        previous = np.zeros(len(data))
        clv = np.zeros(len(data))
        for step in steps:
            cumulative = _expected_purchases(model.bgnbd, data, step)
            clv += (cumulative - previous) * spend / (1.0 + discount_rate) ** step
            previous = cumulative
    return pd.DataFrame(
        {
            "customer_id": data["customer_id"].to_numpy(),
            "p_alive": p_alive,
            "expected_purchases": purchases,
            "expected_spend": spend,
            "clv": clv,
        }
    )


def _expected_purchases(bgnbd: BetaGeoModel, data: pd.DataFrame, horizon: float) -> np.ndarray:
    return _squeeze(bgnbd.expected_purchases(data=data[["customer_id", "frequency", "recency", "T"]], future_t=horizon))


def _squeeze(values: Any) -> np.ndarray:
    """A MAP prediction has chain and draw dimensions of length one; averaging them also covers MCMC fits."""
    return np.asarray(values.mean(("chain", "draw")).to_numpy(), dtype=float)


# ---------------------------------------------------------------------------------------- holdout


@dataclass(frozen=True)
class HoldoutCheck:
    """Actual vs forecast repeat purchases of a cohort over a holdout window right after calibration."""

    horizon: float
    actual: int
    forecast: float  # sum of each customer's conditional expectation given their calibration history
    forecast_unconditional: float  # sum of E[X(T + horizon)] - E[X(T)]: the paper's cumulative tracking curve
    by_frequency: pd.DataFrame  # calibration frequency (capped at 7+) -> mean actual and forecast

    @property
    def error_pct(self) -> float:
        return 100.0 * (self.forecast - self.actual) / self.actual


def holdout_check(
    bgnbd: BetaGeoModel, summary: pd.DataFrame, holdout_purchases: pd.Series, *, horizon: float
) -> HoldoutCheck:
    """Compare the BG/NBD forecast over ``horizon`` with the purchases actually made in the holdout."""
    data = summary[["customer_id", "frequency", "recency", "T"]].copy()
    actual = holdout_purchases.reindex(data["customer_id"]).fillna(0).to_numpy()
    conditional = _expected_purchases(bgnbd, data, horizon)
    r, alpha, a, b = (map_params(bgnbd, BGNBD_PARAMS)[k] for k in BGNBD_PARAMS)
    t_cal = data["T"].to_numpy(dtype=float)
    unconditional = _bgnbd_unconditional(r, alpha, a, b, t_cal + horizon) - _bgnbd_unconditional(r, alpha, a, b, t_cal)
    table = (
        pd.DataFrame(
            {
                "calibration_frequency": np.minimum(data["frequency"].to_numpy(), 7).astype(int),
                "actual": actual,
                "forecast": conditional,
            }
        )
        .groupby("calibration_frequency")
        .agg(customers=("actual", "size"), actual=("actual", "mean"), forecast=("forecast", "mean"))
        .reset_index()
    )
    return HoldoutCheck(
        horizon=horizon,
        actual=int(actual.sum()),
        forecast=float(conditional.sum()),
        forecast_unconditional=float(unconditional.sum()),
        by_frequency=table,
    )


def _bgnbd_unconditional(r: float, alpha: float, a: float, b: float, t: np.ndarray) -> np.ndarray:
    """E[X(t)] for a new customer, FHL (2005) eq. 9."""
    from scipy.special import hyp2f1

    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))


# ------------------------------------------------------------------------------------------ CDNOW


@dataclass(frozen=True)
class CdnowBenchmark:
    """The CDNOW anchor: fitted vs published parameters and the weeks 40-78 holdout."""

    customers: int
    params: dict[str, float]
    published: dict[str, float]
    holdout: HoldoutCheck
    fit_seconds: dict[str, float]
    model: ClvModel
    summary: pd.DataFrame


def cdnow_sample_path() -> Path:
    """The raw CDNOW sample shipped inside ``lifetimes`` (a dev dependency; nothing is downloaded).

    Located by path, not with ``lifetimes.datasets.load_dataset``, which imports ``pkg_resources``
    (setuptools), absent from this environment.
    """
    import importlib.util

    spec = importlib.util.find_spec("lifetimes")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the CDNOW sample ships with the dev dependency 'lifetimes', which is not installed")
    return Path(spec.origin).parent / "datasets" / "CDNOW_sample.txt"


def load_cdnow_transactions(path: Path | None = None) -> pd.DataFrame:
    """CDNOW sample as a transaction log: customer_id, date, amount (one row per order line)."""
    raw = pd.read_csv(
        path or cdnow_sample_path(),
        sep=r"\s+",
        header=None,
        names=["master_id", "customer_id", "date", "cds", "amount"],
        dtype={"date": str},
    )
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    return raw[["customer_id", "date", "amount"]]


def cdnow_benchmark(path: Path | None = None) -> CdnowBenchmark:
    """Fit both models on CDNOW (weeks, calibration to 1997-09-30) and check the 39-week holdout."""
    transactions = load_cdnow_transactions(path)
    summary = rfm_summary(transactions, CDNOW_CALIBRATION_END, unit="W")
    model = fit_clv(summary, unit="W")
    actual = repeat_purchases_between(transactions, CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END)
    horizon = (pd.Timestamp(CDNOW_HOLDOUT_END) - pd.Timestamp(CDNOW_CALIBRATION_END)).days / DAYS_PER_UNIT["W"]
    return CdnowBenchmark(
        customers=len(summary),
        params=model.params,
        published=dict(CDNOW_PUBLISHED),
        holdout=holdout_check(model.bgnbd, summary, actual, horizon=horizon),
        fit_seconds=model.fit_seconds,
        model=model,
        summary=summary,
    )


def _check_summary(summary: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in summary.columns]
    if missing:
        raise ValueError(f"RFM summary lacks columns {missing}")
    if (duplicated := summary["customer_id"].duplicated(keep=False)).any():
        ids = sorted(summary.loc[duplicated, "customer_id"].astype(str).unique())
        raise ValueError(f"RFM summary has more than one row for customer_id {ids[:5]} ({len(ids)} in all)")
    if "recency" in columns and (late := summary["recency"] > summary["T"] + 1e-9).any():
        ids = summary.loc[late, "customer_id"].astype(str).tolist()
        raise ValueError(f"recency exceeds T for customer_id {ids[:5]} ({len(ids)} in all): the summary's calibration end is wrong")
