"""Media mix model: what each paid channel's spend earns, and a better split of the same total (issue 27).

The model is pymc-marketing 0.19's ``pymc_marketing.mmm.multidimensional.MMM`` over the daily rows of
``kpi_media_daily``: revenue against each channel's spend through a geometric adstock (``l_max`` days,
normalised weights) and a logistic saturation, with day-of-week controls and a yearly Fourier season (order 8).
It is sampled with PyMC's NUTS (numpyro and nutpie are not installed) at small settings that converge
on the simulated retailer (:class:`MediaMixConfig`; docs/models.md, "Media mix").

From the posterior: each channel's contribution and ROAS with a 94 % interval, its adstock and
saturation parameters, and :class:`ResponseCurves`, the fitted response to a steady daily spend,
which :func:`recommend_budgets` uses to move the same total between channels.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ml import tracking
from ml.arviz_stamp import settle_arviz_stamp
from ml.features import read
from ml.train.config import EXPERIMENT, TrainConfig
from ml.train.registration import CycleRun, log_register_gate
from ml.train.trained import Trained

if TYPE_CHECKING:
    import arviz as az

    from campaign_loop.config import Settings

REVENUE = "revenue"
DATE = "activity_date"
HDI_PROB = 0.94
DOW_CONTROLS = tuple(f"dow_{d}" for d in range(6))  # Monday..Saturday; Sunday is the intercept


@dataclass(frozen=True)
class MediaMixConfig:
    """Sampler and model sizes. The defaults converge (r-hat <= 1.05) on the simulated retailer's 26 weeks
    of daily data in about 40 s of CPU: 2 chains x (300 tuning + 300 draws); more draws only narrow
    the Monte Carlo error, which is already a fraction of the posterior's width."""

    days: int = 182  # newest days fitted; a year's season needs no more than the Fourier terms give
    min_days: int = 56
    l_max: int = 7
    yearly_seasonality: int = 8  # order 2 left the holiday peaks to the biggest channel (bench/RESULTS.md)
    chains: int = 2
    tune: int = 300
    draws: int = 300
    target_accept: float = 0.9
    # NUTS's mass matrix: dense, because adstock, saturation and the intercept are correlated: with PyMC's
    # diagonal default the sampler took trees of depth 9 (about 580 steps a draw) and a median 117 s a fit,
    # with a dense one depth 7 and 39 s, at the same r-hat and intervals (bench/RESULTS.md, "Media mix recovery").
    init: str = "jitter+adapt_full"
    roas_prior: float = 3.0  # prior scale of a channel's revenue at saturation per unit of its mean daily spend
    seed: int = 0
    max_change: float = 0.5  # a channel's recommended daily spend stays within +-50 % of its current one


class TooLittleData(ValueError):
    """The media frame has too few days or no channel with spend."""


def media_frame(rows: pd.DataFrame, days: int | None = None) -> pd.DataFrame:
    """``kpi_media_daily`` rows (one per day and channel) as the model's frame: one row per day with a spend
    column per channel and the day's revenue; the newest ``days`` days."""
    missing = {DATE, "channel", "spend", REVENUE} - set(rows.columns)
    if missing:
        raise ValueError(f"kpi_media_daily rows lack columns {sorted(missing)}")
    wide = rows.pivot_table(index=DATE, columns="channel", values="spend", aggfunc="sum", fill_value=0.0)
    wide.columns = [str(c) for c in wide.columns]
    revenue = rows.groupby(DATE)[REVENUE].first()
    frame = wide.join(revenue).reset_index().sort_values(DATE)
    frame[DATE] = pd.to_datetime(frame[DATE])
    frame = frame.astype({c: float for c in frame.columns if c != DATE})
    return (frame.tail(days) if days else frame).reset_index(drop=True)


def channels_of(frame: pd.DataFrame) -> list[str]:
    """The frame's channels that spent on at least half of its days: a channel spending once a week (a CRM
    send) has too few distinct days for its adstock and saturation to be told apart."""
    spend = frame.drop(columns=[DATE, REVENUE])
    return [c for c in spend.columns if (spend[c] > 0).mean() >= 0.5]


def _design(frame: pd.DataFrame) -> pd.DataFrame:
    X = frame.drop(columns=[REVENUE]).copy()
    dow = X[DATE].dt.dayofweek
    for d, name in enumerate(DOW_CONTROLS):
        X[name] = (dow == d).astype(float)
    return X


@dataclass
class MediaMixFit:
    """The fitted model, its posterior and the frame it saw."""

    model: Any
    idata: az.InferenceData
    frame: pd.DataFrame
    channels: list[str]
    config: MediaMixConfig
    seconds: float = 0.0


def fit_media_mix(frame: pd.DataFrame, channels: list[str] | None = None,
                  config: MediaMixConfig | None = None) -> MediaMixFit:
    """Sample the MMM on ``frame`` (:func:`media_frame`); ``channels`` default :func:`channels_of`."""
    import time

    settle_arviz_stamp()
    from pymc_extras.prior import Prior
    from pymc_marketing.mmm import GeometricAdstock, LogisticSaturation
    from pymc_marketing.mmm.multidimensional import MMM

    config = config or MediaMixConfig()
    channels = channels if channels is not None else channels_of(frame)
    if not channels:
        raise TooLittleData("no channel spent on half of the days")
    if len(frame) < config.min_days:
        raise TooLittleData(f"{len(frame)} days of media data, fewer than min_days={config.min_days}")
    X = _design(frame)[[DATE, *channels, *DOW_CONTROLS]]
    y = frame[REVENUE].rename("y")
    # A channel's most revenue a day, in units of the target's maximum (the model's scale): HalfNormal with a
    # scale of roas_prior x its mean daily spend, not pymc-marketing's default of twice the largest day's revenue
    # for every channel, under which a flat curve of any height trades places with the intercept and the
    # posterior mean ROAS sits several times above the truth (bench/RESULTS.md, "Media mix recovery").
    sigma = config.roas_prior * frame[channels].mean().to_numpy() / float(frame[REVENUE].abs().max())
    saturation = LogisticSaturation(priors={"beta": Prior("HalfNormal", sigma=sigma, dims="channel"),
                                            "lam": Prior("Gamma", alpha=3, beta=1, dims="channel")})
    model = MMM(date_column=DATE, channel_columns=channels, adstock=GeometricAdstock(l_max=config.l_max),
                saturation=saturation, control_columns=list(DOW_CONTROLS),
                yearly_seasonality=config.yearly_seasonality if len(frame) >= 2 * config.min_days else None)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the sampler's advice to run 4 chains; r-hat is checked below
        model.fit(X, y, chains=config.chains, tune=config.tune, draws=config.draws, cores=1,
                  target_accept=config.target_accept, init=config.init, random_seed=config.seed, progressbar=False)
    return MediaMixFit(model, model.idata, frame, list(channels), config, time.perf_counter() - started)


def _draws(fit: MediaMixFit, name: str) -> np.ndarray:
    """A posterior variable as (draws, ...) with chains stacked."""
    values = fit.idata.posterior[name].values
    return values.reshape(-1, *values.shape[2:])


def target_scale(fit: MediaMixFit) -> float:
    return float(np.asarray(fit.model.get_scales_as_xarray()["target_scale"]).ravel()[0])


def channel_scales(fit: MediaMixFit) -> np.ndarray:
    scale = fit.model.get_scales_as_xarray()["channel_scale"]
    return np.asarray(scale.sel(channel=fit.channels)).ravel()


def _interval(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed interval of ``HDI_PROB`` along axis 0."""
    tail = (1 - HDI_PROB) / 2
    return np.quantile(values, tail, axis=0), np.quantile(values, 1 - tail, axis=0)


def channel_summary(fit: MediaMixFit) -> pd.DataFrame:
    """One row per channel: spend, contribution (revenue) and ROAS with their 94 % intervals, share of the
    media contribution, and the adstock/saturation parameters (posterior means; ``beta`` in revenue a day)."""
    contribution = _draws(fit, "channel_contribution").sum(axis=1) * target_scale(fit)  # (draws, channels)
    spend = fit.frame[fit.channels].sum().to_numpy()
    roas = contribution / np.where(spend > 0, spend, np.nan)
    c_low, c_high = _interval(contribution)
    r_low, r_high = _interval(roas)
    return pd.DataFrame({
        "channel": fit.channels, "spend": spend,
        "contribution": contribution.mean(axis=0), "contribution_low": c_low, "contribution_high": c_high,
        "contribution_share": contribution.mean(axis=0) / max(contribution.mean(axis=0).sum(), 1e-12),
        "roas": roas.mean(axis=0), "roas_low": r_low, "roas_high": r_high,
        "adstock_alpha": _draws(fit, "adstock_alpha").mean(axis=0),
        "saturation_lam": _draws(fit, "saturation_lam").mean(axis=0),
        "saturation_beta": _draws(fit, "saturation_beta").mean(axis=0) * target_scale(fit),
    })


def diagnostics(fit: MediaMixFit) -> dict[str, float]:
    """Convergence (worst r-hat, smallest bulk ESS over the media parameters), divergences and in-sample R^2
    of the posterior mean."""
    settle_arviz_stamp()
    import arviz as az

    names = ["adstock_alpha", "saturation_lam", "saturation_beta", "intercept_contribution", "y_sigma"]
    summary = az.summary(fit.idata, var_names=names, kind="diagnostics")
    mu = _draws(fit, "y").mean(axis=0) if "y" in fit.idata.posterior else None
    if mu is None:
        mu = (_draws(fit, "channel_contribution").sum(axis=-1) + _baseline_draws(fit)).mean(axis=0)
    y = fit.frame[REVENUE].to_numpy() / target_scale(fit)
    r2 = 1 - float(np.sum((y - mu) ** 2) / np.sum((y - y.mean()) ** 2))
    return {"max_r_hat": float(summary["r_hat"].max()), "min_ess_bulk": float(summary["ess_bulk"].min()),
            "divergences": float(fit.idata.sample_stats["diverging"].values.sum()), "r2": r2,
            "days": float(len(fit.frame)), "fit_seconds": fit.seconds}


def _baseline_draws(fit: MediaMixFit) -> np.ndarray:
    """Intercept, controls and season of every draw and day (scaled units)."""
    post = fit.idata.posterior
    total = _draws(fit, "intercept_contribution").reshape(-1, 1) * np.ones(len(fit.frame))
    for name in ("control_contribution", "yearly_seasonality_contribution"):
        if name in post:
            part = _draws(fit, name)
            total = total + (part.sum(axis=-1) if part.ndim == 3 else part)
    return total


@dataclass
class ResponseCurves:
    """The fitted revenue a day of each channel at a steady daily spend, per posterior draw: what
    MLflow stores (``predict``) and what the reallocation optimises."""

    channels: list[str]
    beta: np.ndarray  # (draws, channels), revenue a day at saturation
    lam: np.ndarray  # (draws, channels)
    channel_scale: np.ndarray  # (channels,), spend units of lam
    alpha: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (draws, channels), for the record

    @classmethod
    def from_fit(cls, fit: MediaMixFit) -> ResponseCurves:
        return cls(list(fit.channels), _draws(fit, "saturation_beta") * target_scale(fit),
                   _draws(fit, "saturation_lam"), channel_scales(fit), _draws(fit, "adstock_alpha"))

    def revenue(self, daily_spend: np.ndarray) -> np.ndarray:
        """Expected revenue a day per channel (posterior mean) of a steady ``daily_spend`` (channels,) or
        (rows, channels); the normalised adstock of a steady spend is the spend itself."""
        x = np.atleast_2d(daily_spend)[:, None, :] * self.lam[None] / self.channel_scale
        out = (self.beta[None] * (1 - np.exp(-x)) / (1 + np.exp(-x))).mean(axis=1)
        return out if np.ndim(daily_spend) == 2 else out[0]

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """Rows of steady daily spend per channel (columns = channels) -> expected revenue a day per channel."""
        return pd.DataFrame(self.revenue(X[self.channels].to_numpy(float)), columns=self.channels, index=X.index)


def recommend_budgets(curves: ResponseCurves, current: pd.Series, max_change: float = 0.5) -> pd.DataFrame:
    """The daily spend per channel that maximises the expected revenue of the same total, each channel
    within ``1 +- max_change`` of its ``current`` daily spend (the curves are known near the data only)."""
    from scipy.optimize import minimize

    now = current.reindex(curves.channels).fillna(0.0).to_numpy(float)
    total = float(now.sum())
    bounds = [(v * (1 - max_change), v * (1 + max_change)) for v in now]
    result = minimize(lambda s: -curves.revenue(s).sum(), now, method="SLSQP", bounds=bounds,
                      constraints=[{"type": "eq", "fun": lambda s: s.sum() - total}], options={"maxiter": 200})
    best = result.x if result.success else now
    return pd.DataFrame({
        "channel": curves.channels, "current_daily_spend": now, "recommended_daily_spend": best,
        "current_daily_revenue": curves.revenue(now), "recommended_daily_revenue": curves.revenue(best),
    })


def profile_r2(curves: ResponseCurves, frame: pd.DataFrame, l_max: int = 7) -> float:
    """R^2 of revenue explained by ``curves``' media contributions (posterior-mean adstock, then each draw's
    saturation) plus the least-squares baseline (intercept, weekday, yearly season) fitted to the rest:
    the same score for a challenger and a loaded champion on the same days, whatever sampled them."""
    spend = frame[curves.channels].to_numpy(float)
    adstocked = np.zeros_like(spend)
    for c, alpha in enumerate(curves.alpha.mean(axis=0)):
        weights = alpha ** np.arange(l_max)
        weights = weights / weights.sum()
        for lag, w in enumerate(weights):
            adstocked[lag:, c] += w * spend[: len(spend) - lag, c]
    media = curves.revenue(adstocked).sum(axis=1)
    day = frame[DATE].dt.dayofyear.to_numpy() / 365.25 * 2 * np.pi
    dow = frame[DATE].dt.dayofweek.to_numpy()
    base = np.column_stack([np.ones(len(frame)), *[(dow == d).astype(float) for d in range(6)],
                            np.sin(day), np.cos(day), np.sin(2 * day), np.cos(2 * day)])
    y = frame[REVENUE].to_numpy(float)
    rest = y - media
    coef, *_ = np.linalg.lstsq(base, rest, rcond=None)
    residual = rest - base @ coef
    return 1 - float(residual @ residual / np.sum((y - y.mean()) ** 2))


def trained(fit: MediaMixFit, as_of: Any) -> Any:
    """The fit as ``ml.train.trained.Trained``: the response curves are the model MLflow stores, gated on
    :func:`profile_r2` against the champion's curves on the same days, and on convergence."""
    curves = ResponseCurves.from_fit(fit)
    summary = channel_summary(fit)
    metrics = {**diagnostics(fit), "profile_r2": profile_r2(curves, fit.frame, fit.config.l_max)}
    for row in summary.itertuples():
        metrics |= {f"roas.{row.channel}": row.roas, f"roas_low.{row.channel}": row.roas_low,
                    f"roas_high.{row.channel}": row.roas_high, f"contribution_share.{row.channel}": row.contribution_share}
    config = fit.config
    # A champion of other channels cannot explain these days' media: it scores as no media at all.
    no_media = ResponseCurves(curves.channels, curves.beta * 0, curves.lam, curves.channel_scale, curves.alpha)
    return Trained(
        model=curves, metrics=metrics,
        champion_metrics_fn=lambda champion: {"profile_r2": profile_r2(
            champion if set(getattr(champion, "channels", [])) == set(curves.channels) else no_media,
            fit.frame, config.l_max)},
        params={"channels": ",".join(fit.channels), "days": len(fit.frame), "l_max": config.l_max,
                "chains": config.chains, "tune": config.tune, "draws": config.draws,
                "target_accept": config.target_accept, "init": config.init, "yearly_seasonality": config.yearly_seasonality},
        rows={"days": len(fit.frame)},
        input_example=fit.frame[fit.channels].tail(3).reset_index(drop=True),
        description=f"Media mix response curves (pymc-marketing MMM) of {', '.join(fit.channels)}. "
                    f"Fitted on {len(fit.frame)} days to {as_of}.",
        train_window=(fit.frame[DATE].min().date(), fit.frame[DATE].max().date()),
    )


def read_media_daily(warehouse_path: Path | str, schema: str) -> pd.DataFrame:
    """``<schema>.kpi_media_daily`` with spend and revenue as floats."""
    rows = read(warehouse_path, "kpi_media_daily", ["activity_date", "channel", "spend", "revenue"], schema)
    return rows.astype({"spend": "float64", "revenue": "float64"})


def recommendation_path(settings: Settings, cycle_id: str) -> Path:
    """Where the media mix of the cycle that starts ``cycle_id`` is written (summary and budgets, JSON)."""
    return settings.exports_dir / "media_mix" / f"{cycle_id}.json"


def media_mix_cycle(settings: Settings, cycle_id: str, lineage: Mapping[str, Any], schema: str,
                    config: MediaMixConfig | None = None) -> dict[str, Any]:
    """Fit the MMM on the published ``kpi_media_daily`` and :func:`register_media_mix` it for ``cycle_id``."""
    config = config or MediaMixConfig(seed=settings.seed)
    frame = media_frame(read_media_daily(settings.warehouse_path, schema), days=config.days)
    try:
        fit = fit_media_mix(frame, config=config)
    except TooLittleData as error:
        return {"cycle_id": cycle_id, "status": "skipped", "reason": str(error)}
    return register_media_mix(settings, cycle_id, lineage, fit)


def register_media_mix(settings: Settings, cycle_id: str, lineage: Mapping[str, Any], fit: MediaMixFit) -> dict[str, Any]:
    """Log, register and gate ``fit`` as model ``mmm``; write its channel summary and recommended budgets for
    the cycle ``cycle_id`` (:func:`recommendation_path`) and return them."""
    import json

    import mlflow

    if not mlflow.is_tracking_uri_set():
        tracking.configure(settings)
    run = CycleRun(client=mlflow.MlflowClient(), experiment_id=tracking.ensure_experiment(
        EXPERIMENT, tracking.artifact_root(settings)), cycle_id=cycle_id, lineage=dict(lineage),
        mode=settings.promotion_mode, config=TrainConfig(features=tuple(fit.channels), plots=False))
    result = trained(fit, cycle_id)
    report = log_register_gate(run, "mmm", result)
    budgets = recommend_budgets(result.model, fit.frame[fit.channels].tail(28).mean(), fit.config.max_change)
    out = {"cycle_id": cycle_id, "status": report.status, "reason": report.reason, "version": report.version,
           "cycle_days": settings.cycle_days, "diagnostics": diagnostics(fit),
           "channels": channel_summary(fit).to_dict(orient="records"), "budgets": budgets.to_dict(orient="records")}
    path = recommendation_path(settings, cycle_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=float))
    return out


def design_channel_budgets(settings: Settings, cycle_id: str) -> dict[str, float]:
    """``channel_budgets`` for the design: the settings' own, plus, with ``media_budgets`` on, the MMM's
    recommended spend of the cycle for each channel the design sends on that has none set (a paid channel
    is the media team's, not the design's)."""
    import json

    budgets = dict(settings.channel_budgets)
    path = recommendation_path(settings, cycle_id)
    if not settings.media_budgets or not path.is_file():
        return budgets
    for row in json.loads(path.read_text())["budgets"]:
        if row["channel"] in settings.channels and row["channel"] not in budgets:
            budgets[row["channel"]] = round(float(row["recommended_daily_spend"]) * settings.cycle_days, 2)
    return budgets
