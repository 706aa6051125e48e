"""The one typed place for configuration.

Every key has a default that runs out of the box and can be overridden by an environment variable
named ``CAMPAIGN_LOOP_<KEY>`` (for example ``CAMPAIGN_LOOP_CUSTOMERS=100000``); the home directory is
``CAMPAIGN_LOOP_HOME``. The CLI flag for a key has the same name (``--customers``). A home may carry
its own settings file, ``<home>/campaign-loop.env``, of the same variables (``load_settings`` reads it).
Nothing here writes to the file system: paths are derived, created by the code that writes them.
"""

from __future__ import annotations

import copy
import json
import os
from datetime import date, datetime, timedelta
from functools import cache, cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

OfferName = Literal["message", "pct10", "pct20"]  # the keys of campaign_loop.actions.OFFERS
ChannelName = Literal["email", "push", "sms", "kakao"]
# The keys of campaign_loop.actions.TRIGGERS (a test holds the two equal).
TriggerName = Literal["cart_abandonment", "browse_abandonment", "post_purchase_cross_sell", "win_back",
                      "membership_anniversary"]
CHANNELS: tuple[str, ...] = get_args(ChannelName)  # every channel the platform knows how to send on


class Settings(BaseSettings):
    """Campaign Loop settings; frozen so a task cannot change what another task sees."""

    model_config = SettingsConfigDict(env_prefix="CAMPAIGN_LOOP_", frozen=True, extra="forbid")

    home: Path = Field(Path("var"), description="Root of all runtime state (landing, warehouse, MLflow, ...).")

    demo: bool = Field(True, description="Run the simulated retailer as the data source of each cycle.")
    airflow_runner: Literal["scheduler", "dags_test"] = Field(
        "scheduler",
        description="What runs the DAG's tasks: Airflow's scheduler (the dbt model watchers defer to the triggerer) "
                    "or `airflow dags test`, one task at a time (the watchers reschedule; `make demo` sets this).",
    )

    # The simulated retailer (demo mode).
    customers: int = Field(20_000, ge=100, description="People in the simulated world.")
    seed: int = Field(42, description="Seed of the simulated world; the same seed gives the same files.")
    start_date: date = Field(date(2026, 1, 5), description="First day of cycle 0 (a Monday): the cycle calendar's anchor. On a retailer's data, the "
                    "Monday on or before its first history day, so every history week is a point-in-time training date.")
    cycle_days: int = Field(7, ge=1, le=31, description="Length of one campaign cycle in days.")
    cycles: int = Field(6, ge=1, description="Cycles `make demo` runs.")
    history_weeks: int = Field(52, ge=0, le=260, description="Purchase history the simulated world starts with.")
    dirt: float = Field(1.0, ge=0.0, le=20.0, description="Multiplier on the simulator's default dirt rates; 0 is clean data.")
    bau_contact_share: float = Field(
        0.1, ge=0.0, le=1.0,
        description="Share of consenting customers a business-as-usual period contacts at random (half held out).",
    )
    newsletter_history: int = Field(
        12, ge=0, le=52,
        description="Monthly newsletters the retailer sent every member on each consented channel before cycle 0 "
                    "(no holdout; the newest five weeks before it); their sends and engagement land with cycle 0.",
    )
    world: Literal["a", "b", "c", "d", "r"] = Field(
        "a", description="Causal structure of the simulated customers' response to campaigns (sim/worlds.py): a "
                         "channel affinity, b recency/price/category, c sleeping dogs and discount-only responders, "
                         "d fatigue, r retention (customers defect; a contact retains some). Only the simulator "
                         "and the oracle read it.",
    )
    send_hour_preference: bool = Field(
        False, description="Simulated people read messages at a preferred local hour: opens, clicks and effects fall "
                           "with the send hour's distance from it (sim/hours.py). Off: the send hour changes nothing.",
    )
    media_effect: bool = Field(
        False, description="The simulated paid media (ad_spend's search, social, display) cause online orders with a "
                           "known adstock, saturation and ROAS per channel, and cycle 0 lands a history of spend "
                           "(sim/media.py); off, paid media sells nothing. Only the simulator and the oracle read it.",
    )
    file_format: Literal["csv", "parquet"] = Field("csv", description="Format the simulator lands files in.")

    # Ingestion.
    quarantine_rate_max: float = Field(
        0.05, ge=0.0, le=1.0, description="A file quarantining a larger share of its rows is reported as failing."
    )
    # Size limits: an export is untrusted input, so what one file may cost in memory and time is bounded.
    header_bytes_max: int = Field(
        65_536, ge=1_024,
        description="Longest header line a CSV file may have (bytes, after decompression); a longer one "
                    "quarantines the file whole.",
    )
    field_bytes_max: int = Field(
        1_048_576, ge=1_024,
        description="Longest value a field may hold (bytes); a row with a longer one is quarantined alone "
                    "(reason field_too_long), the rest of its file loads.",
    )
    file_bytes_max: int = Field(
        2_147_483_648, ge=1_024,
        description="Largest file (bytes; a .csv.gz counted decompressed, stopping at the limit); a larger one "
                    "quarantines the file whole.",
    )
    file_rows_max: int = Field(
        10_000_000, ge=1,
        description="Most rows a file may have; a file with more is quarantined whole (split the export).",
    )
    raw_pii_retention_days: int | None = Field(
        90, ge=0,
        description="Days raw tables keep customers' clear e-mails, phones and names, counted from a row's own time "
                    "(an order's ordered_at, a profile's updated_at) to the end of the cycle: after each cycle "
                    "publishes, older values are replaced by their keyed pseudonym (audit.raw_pii_retention; the "
                    "marts do not change). 0: as soon as the cycle publishes; none: kept indefinitely.",
    )
    closed_dates: Annotated[tuple[date, ...], NoDecode] = Field(
        (), description="Days the business was closed, comma-separated ISO dates or first..last ranges (e.g. "
                        "2010-12-23..2011-01-03): the raw gate does not look for those days' rows (day_gap).",
    )
    default_margin_rate: float = Field(
        0.3, ge=0.0, lt=1.0,
        description="Margin assumed, as a share of a line's net amount, for products the catalogue gives no "
                    "unit_cost (those lines are marked is_margin_estimated).",
    )

    # The campaign (used by later stages; here so the DAG's Params and the CLI share them).
    budget: float = Field(20_000.0, ge=0.0, description="Total budget of one cycle's campaign (currency units).")
    holdout_share: float = Field(0.1, ge=0.05, le=0.5, description="Randomised holdout share of each campaign.")
    channel_budgets: Annotated[dict[str, float], NoDecode] = Field(
        default_factory=dict,
        description="Per-channel caps within the budget, comma-separated channel:amount (e.g. sms:500,email:2000); "
                    "a channel without one shares the total budget, 0 closes it.",
    )
    media_mix: bool = Field(
        False, description="Fit the media mix model (ml/mmm.py) on kpi_media_daily each cycle: channel contribution, "
                           "ROAS with intervals, adstock and saturation, and budgets of the same total; registered "
                           "in MLflow as model mmm. Off by default: sampling costs a minute or more a cycle.",
    )
    media_budgets: bool = Field(
        False, description="The design caps each of its channels that the media mix model recommends a budget for "
                           "and channel_budgets leaves open at that budget (needs media_mix).",
    )
    min_detectable_lift: float = Field(
        0.01, gt=0.0, lt=1.0,
        description="Smallest lift in purchase probability (absolute, 0.01 = one point) a campaign's holdout must "
                    "detect at 80 % power; the power calculation grows the holdout beyond holdout_share for it.",
    )
    correction: Literal["holm", "dunnett"] = Field(
        "dunnett",
        description="Multiple-comparison correction of a campaign's k arms (variants) against its control, per "
                    "metric: dunnett (step-down, from the arms' joint distribution: the family-wise rate at "
                    "alpha exactly, never a larger p than Holm's) or holm (step-down over the p-values alone). "
                    "docs/decisions/0025.",
    )
    contact_cap: int = Field(4, ge=1, description="Most marketing contacts a customer receives in 30 days, the next one included.")
    frequency_cap: Literal["global", "customer"] = Field(
        "global", description="Contact cap of a plan: global, contact_cap for everyone; customer, also each "
                              "customer's own cap under it, where fatigue measured on the randomised campaigns makes "
                              "one more contact worth less than its cost (ml/frequency.py). Off by default: "
                              "bench/RESULTS.md, \"Frequency cap learned from fatigue\".",
    )
    exploration: Literal["auto", "thompson", "epsilon"] = Field(
        "auto",
        description="How a campaign keeps every action measured beside its holdout: epsilon (a random share of the "
                    "audience gets a random allowed action; the rest the best expected action), thompson (the "
                    "optimiser runs on a draw of each action's effect from its posterior; epsilon still applies) "
                    "or auto (thompson once measured effects carry standard errors).",
    )
    epsilon: float = Field(0.05, ge=0.0, lt=1.0, description="Share of the reachable audience given a random allowed action.")
    thompson_scale: float = Field(
        0.25, ge=0.0, description="Thompson sampling draws each action's effect with its standard error times this "
                                  "(1: the posterior; 0: its mean, no exploration beyond epsilon).",
    )
    uplift_pessimism: float = Field(
        0.0, ge=0.0,
        description="Standard errors of an action's measured effect the plan subtracts before it values the action "
                    "for exploitation (0: its mean). Above 0, an action whose effect the randomised campaigns cannot "
                    "tell from a small harm goes only to exploration's share, which keeps measuring it.",
    )
    value_horizon_weeks: int = Field(
        0, ge=0, le=104,
        description="Weeks of future value the plan credits an action with: 0 values this cycle's margin only; 52 "
                    "adds the future margin a contact keeps, P(churn) x retention_effect x the customer's 52-week "
                    "CLV (scaled to the horizon), so churn-prevention offers go where that exceeds their cost.",
    )
    retention_effect: float = Field(
        0.2, ge=0.0, le=1.0,
        description="Share of a customer's P(churn) a delivered action removes, used when value_horizon_weeks > 0: "
                    "the marketer's assumption until a retention holdout measures it.",
    )
    channel_preference: bool = Field(
        True, description="Scale each customer's measured effect of an action by their preference for its channel "
                          "(their opens there against the channel's average), as far as the randomised campaigns "
                          "confirm that customers who prefer a channel respond more on it.",
    )
    policy_choice: bool = Field(
        False, description="Before exporting the design, value it and two plans built from the measured lifts alone "
                           "(the best single action to everyone reachable; the likeliest buyers with the best-measured "
                           "offer) on the past cycles' logs by off-policy evaluation (ml/policy_choice.py), and send a "
                           "challenger instead only when its paired difference to the design is above zero at 95 %. "
                           "Off by default: docs/decisions/0027.",
    )
    offers: Annotated[tuple[OfferName, ...], NoDecode] = Field(
        ("message", "pct10", "pct20"), min_length=1, description="Offers the campaign may use (comma-separated)."
    )
    channels: Annotated[tuple[ChannelName, ...], NoDecode] = Field(
        CHANNELS, min_length=1,
        description="Channels the retailer sends on (comma-separated, of email, push, sms, kakao): the plans use "
                    "only these and a send file is written for each.",
    )
    assume_consent: bool = Field(
        False, description="Treat a member without a consent record on an enabled channel as opted in (for a "
                           "retailer with no consents export); a recorded opt-out always holds. Off: no record, "
                           "no contact.",
    )
    timezone: str = Field(
        "Asia/Seoul", description="The retailer's local time zone (IANA name): the plans' send times are local "
                                  "hours in it, and store sources' naive timestamps are read in it.",
    )
    send_time: Literal["channel", "customer"] = Field(
        "customer", description="Send hour of a plan's messages: channel, each channel's usual hour; customer, each "
                                "customer's best hour from the local hours of their opens and clicks "
                                "(ml/send_time.py), the channel's where they have none.",
    )
    send_window_start: int = Field(
        8, ge=0, le=23, description="First local hour a marketing message may be sent at (Korea's Network Act: "
                                    "08:00 without a separate night-time consent).",
    )
    send_window_end: int = Field(
        21, ge=1, le=24, description="Local hour from which no marketing message may be sent (21: the last at "
                                     "20:00).",
    )
    triggers: Annotated[tuple[TriggerName, ...], NoDecode] = Field(
        (), description="Trigger journeys that run beside the weekly campaign (comma-separated names of "
                        "campaign_loop.actions.TRIGGERS, e.g. cart_abandonment,win_back; empty: off).",
    )
    trigger_holdout_share: float = Field(
        0.2, ge=0.05, le=0.5,
        description="Randomised holdout share of every trigger journey: a member is held out of a trigger by a "
                    "hash of the seed, the trigger and the member ID, so the same member stays held out of it.",
    )
    kpi_alert_callback: str | None = Field(
        None, description="module:function called with each KPI alert (off by default; alerts are always recorded)."
    )
    promotion_mode: Literal["auto", "manual"] = Field(
        "auto", description="auto: the gate moves the champion alias; manual: a reviewer promotes in MLflow."
    )

    # The distributed profile (`campaign-loop deploy`, docs/deploy.md): the same DAG on the CeleryExecutor.
    airflow_database_url: str | None = Field(
        None, description="SQLAlchemy URL of Airflow's metadata database, e.g. "
                          "postgresql+psycopg2://airflow@127.0.0.1:5432/airflow (a password in it or in ~/.pgpass); "
                          "none: SQLite in the home. `campaign-loop deploy` needs a database server.",
    )
    mlflow_database_url: str | None = Field(
        None, description="Backend store of the MLflow server `campaign-loop deploy` starts, e.g. "
                          "postgresql+psycopg2://mlflow@127.0.0.1:5432/mlflow; none: SQLite in the home. Artifacts stay "
                          "files under the home (mlflow/artifacts), served through the server.",
    )
    celery_broker_url: str = Field(
        "redis://127.0.0.1:6379/0", description="The Celery broker the deploy profile's scheduler and workers share "
                                                "(Redis; redis://:password@host:port/db)."
    )
    celery_workers: int = Field(
        2, ge=0, description="Celery workers `campaign-loop deploy` starts on this machine (0: they run elsewhere, "
                             "as `airflow celery worker` with the same settings).",
    )
    celery_worker_concurrency: int = Field(2, ge=1, description="Tasks one Celery worker runs at once.")
    warehouse_pool_slots: int = Field(
        1, ge=1, description="Tasks that may open the warehouse at once under the deploy profile (its `warehouse` "
                             "pool; the dbt watchers, which only wait, are outside it). DuckDB has one writer: 1.",
    )
    task_heartbeat_timeout_seconds: int = Field(
        60, ge=5, description="Seconds without a heartbeat after which the deploy profile's scheduler takes a task "
                              "for lost (its worker died) and retries it on another worker.",
    )
    task_retry_delay_seconds: int | None = Field(
        None, ge=0, description="Under the deploy profile, the delay before a failed or lost task's retry, in place "
                                "of the DAG's (2 minutes); none: the DAG's.",
    )

    # Fault injection (demo mode): break the simulated landing batch on purpose; see docs/validation.md.
    faults: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="Faults injected into the simulated batch, comma-separated, e.g. "
        "corrupt_type:orders.total_amount,drop_source:pos_receipts (cycles >= 1; <fault>@<cycle> for one cycle).",
    )
    # A restatement rewrites what users already saw, so it passes only when someone named the cycles.
    approve_restatement: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="Published cycles (cycle_ids, comma-separated) whose revenue the raw gate lets "
        "rows loaded since their publication change; each use is recorded in audit.restatement_approvals.",
    )

    @field_validator("approve_restatement", mode="before")
    @classmethod
    def _cycle_list(cls, value: object) -> object:
        if isinstance(value, str) and not value.lstrip().startswith("["):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        for cycle in value if isinstance(value, (tuple, list)) else ():
            try:
                date.fromisoformat(str(cycle))
            except ValueError:
                raise ValueError(f"approve_restatement: {cycle!r} is not a cycle_id (the ISO date a cycle starts)") from None
        return value

    @field_validator("closed_dates", mode="before")
    @classmethod
    def _date_ranges(cls, value: object) -> object:
        if not isinstance(value, str) or value.lstrip().startswith("["):
            return value
        days: list[date] = []
        for part in (p.strip() for p in value.split(",") if p.strip()):
            first, _, last = part.partition("..")
            try:
                a, b = date.fromisoformat(first.strip()), date.fromisoformat((last or first).strip())
            except ValueError:
                raise ValueError(f"closed_dates: {part!r} is neither an ISO date nor a first..last range") from None
            if b < a:
                raise ValueError(f"closed_dates: {part!r} ends before it starts")
            days += [a + timedelta(days=i) for i in range((b - a).days + 1)]
        return tuple(days)

    @field_validator("raw_pii_retention_days", mode="before")
    @classmethod
    def _none_word(cls, value: object) -> object:
        # The settings file and the environment can only write "none" for the absence of a limit.
        if isinstance(value, str) and value.strip().lower() in {"", "none", "never", "off"}:
            return None
        return value

    @field_validator("offers", "channels", "faults", "triggers", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("channel_budgets", mode="before")
    @classmethod
    def _channel_amounts(cls, value: object) -> object:
        if isinstance(value, str) and value.lstrip().startswith("{"):
            return json.loads(value)
        if isinstance(value, str):
            pairs = [part.split(":", 1) for part in value.split(",") if part.strip()]
            if malformed := [":".join(p).strip() for p in pairs if len(p) != 2]:
                raise ValueError(f"expected channel:amount, got {malformed}")
            return {channel.strip(): amount.strip() for channel, amount in pairs}
        return value

    @field_validator("channel_budgets")
    @classmethod
    def _known_channels(cls, value: dict[str, float]) -> dict[str, float]:
        if unknown := sorted(set(value) - set(CHANNELS)):
            raise ValueError(f"unknown channels {unknown} (known: {', '.join(CHANNELS)})")
        if negative := {channel: amount for channel, amount in value.items() if amount < 0}:
            raise ValueError(f"negative amounts {negative}")
        return value

    @field_validator("offers", "channels", "triggers")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value))  # "email,email" is one channel, not two

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: use an IANA name such as Europe/London or Asia/Seoul") from None
        return value

    @model_validator(mode="after")
    def _budgets_on_enabled_channels(self) -> Settings:
        if disabled := sorted(set(self.channel_budgets) - set(self.channels)):
            raise ValueError(f"channel_budgets names {disabled}, which channels ({','.join(self.channels)}) does not "
                             "enable: drop the budget or enable the channel")
        return self

    @model_validator(mode="after")
    def _send_window_not_empty(self) -> Settings:
        if self.send_window_start >= self.send_window_end:
            raise ValueError(f"send_window_start ({self.send_window_start}) must be before send_window_end "
                             f"({self.send_window_end}): the legal window would hold no hour")
        return self

    @field_validator("faults")
    @classmethod
    def _known_faults(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if value:  # the landing contract the grammar checks against loads only when a fault is asked for
            from campaign_loop.fault_specs import parse_faults

            parse_faults(value)
        return value

    @field_validator("start_date")
    @classmethod
    def _monday(cls, value: date) -> date:
        if value.weekday() != 0:
            raise ValueError(f"start_date {value} is a {value:%A}; cycles start on a Monday")
        return value

    # Derived paths: one layout, used by every package.
    @cached_property
    def root(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def landing_dir(self) -> Path:
        return self.root / "landing"

    @property
    def quarantine_dir(self) -> Path:
        return self.root / "quarantine"

    @property
    def warehouse_path(self) -> Path:
        return self.root / "warehouse" / "campaign_loop.duckdb"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    @property
    def mlflow_dir(self) -> Path:
        return self.root / "mlflow"

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def truth_dir(self) -> Path:
        return self.root / "truth"

    def cycle_start(self, cycle: int) -> date:
        return self.start_date + timedelta(days=self.cycle_days * cycle)

    def cycle_index(self, day: date) -> int:
        """The cycle a day falls in; days before ``start_date`` are an error, not cycle -1."""
        offset = (day - self.start_date).days
        if offset < 0:
            raise ValueError(f"{day} is before start_date {self.start_date}")
        return offset // self.cycle_days

    def cycle_key(self, cycle: int) -> str:
        """The lineage key (``cycle_id``) of cycle number ``cycle``: it tags the cycle's dbt invocation,
        validation results, MLflow runs, plan and report."""
        return cycle_id(self.cycle_start(cycle))

    def plan_path(self, cycle_id: str) -> Path:
        """Where the campaign plan of ``cycle_id`` is exported; its summaries sit beside it."""
        return self.exports_dir / "plans" / f"{cycle_id}.parquet"


def cycle_id(day: date) -> str:
    """The lineage key of a cycle: the ISO date its period starts."""
    return day.isoformat()


def cycle_of_logical_date(settings: Settings, logical_date: datetime | date) -> int:
    """A run at logical date D works on the cycle that ended at D: the data is complete by then."""
    day = logical_date.date() if isinstance(logical_date, datetime) else logical_date
    return settings.cycle_index(day - timedelta(days=settings.cycle_days))


def logical_date_of_cycle(settings: Settings, cycle: int) -> date:
    """The logical date of the Airflow run that works on ``cycle``: the day after it ends."""
    return settings.cycle_start(cycle + 1)


SETTINGS_FILE = "campaign-loop.env"

# No phoning home from any process the platform starts: these machines reach only package registries, and a
# retailer's data platform should not report its use. Each library reads its own switch: MLflow ignores
# DO_NOT_TRACK=1 (it honours only "true"), and its telemetry client, left on, unset its session variable in
# os.environ while a task's request thread read the environment: a KeyError that failed `train` (Celery).
NO_TELEMETRY: dict[str, str] = {
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "SCARF_ANALYTICS": "false",
    "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
    "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
}


def settings_file(home: Path | str) -> Path:
    """The home's settings file (``campaign-loop init`` writes it): ``CAMPAIGN_LOOP_<KEY>=value`` lines."""
    return Path(home).expanduser().resolve() / SETTINGS_FILE


def load_settings(**overrides: object) -> Settings:
    """Settings from, lowest first: defaults, the home's settings file, the environment, then explicit
    overrides (CLI flags, DAG params). A retailer's home thus carries its own calendar and knobs, so every
    command and every Airflow task of it agrees without exporting variables by hand."""
    given = {k: v for k, v in overrides.items() if v is not None}
    home = given.get("home") or os.environ.get("CAMPAIGN_LOOP_HOME") or Settings.model_fields["home"].default
    path = settings_file(str(home))
    return Settings(_env_file=path if path.is_file() else None, **given)  # type: ignore[call-arg]


@cache
def _settings_schema() -> dict[str, Any]:
    # ~7 ms to build; the DAG file asks for a field's schema per trigger-form field at every parse.
    return Settings.model_json_schema()


def param_schema(key: str) -> dict[str, Any]:
    """A Settings key's JSON schema (type, bounds, enum, description) for a form that sets it, such as
    the Airflow trigger form's Params: one declaration of each knob's rules."""
    schema = copy.deepcopy(_settings_schema()["properties"][key])  # the caller may change it, not the cache
    schema.pop("title", None)
    schema.pop("default", None)
    return schema
