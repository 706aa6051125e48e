"""The campaign actions a cycle can take: one offer sent on one channel.

Shared by the simulated retailer (which knows the true response to each action) and by decisioning
(which has to learn it), so both name actions the same way: ``<offer>__<channel>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from campaign_loop.config import CHANNELS


@dataclass(frozen=True)
class Offer:
    name: str
    offer_type: str  # one of the contract's offer types: none | percent_off | amount_off | free_shipping
    offer_value: float


@dataclass(frozen=True)
class Action:
    offer: Offer
    channel: str

    @property
    def name(self) -> str:
        return f"{self.offer.name}__{self.channel}"

    @property
    def cost_per_contact(self) -> float:
        return CHANNEL_COST[self.channel]


OFFERS: dict[str, Offer] = {
    "message": Offer("message", "none", 0.0),
    "pct10": Offer("pct10", "percent_off", 10.0),
    "pct20": Offer("pct20", "percent_off", 20.0),
}
# What one contact costs on each channel (currency units); sms is billed per message by the carrier.
CHANNEL_COST: dict[str, float] = {"email": 0.01, "push": 0.002, "sms": 0.03, "kakao": 0.015}
ACTIONS: tuple[Action, ...] = tuple(Action(offer, channel) for offer in OFFERS.values() for channel in CHANNELS)

# The columns of a campaign plan, the contract between decisioning and the channel that executes it.
PLAN_COLUMNS: tuple[str, ...] = (
    "member_id",
    "campaign_id",
    "channel",
    "offer_type",
    "offer_value",
    "arm",
    "assignment_probability",
    "cost_per_contact",
)


# Trigger journeys: a rule over one kind of event in ``fct_trigger_candidates`` (its ``trigger_event``) that sends
# one action to the member a delay after the event, beside the weekly campaign and under the same consent and
# contact cap (docs/decisioning.md, "Trigger journeys").
TRIGGER_EVENTS: tuple[str, ...] = ("cart_abandoned", "browse_abandoned", "purchase", "last_purchase", "signup")


@dataclass(frozen=True)
class TriggerRule:
    """One trigger journey: which event starts it, when it sends what, and how often at most.

    ``delay_hours`` after the event the message is due (win-back: the inactivity that counts as lapsed);
    an event older than ``delay_hours + window_hours`` is stale and sends nothing. A member gets this trigger
    at most once in ``cap_days`` (held-out members count: the holdout is assigned, not contacted). The first
    of ``channels`` the member can be reached on carries it. ``min_p_churn``: only members the churn model
    gives at least this probability of having lapsed (win-back at predicted churn).
    """

    name: str
    trigger_event: str
    offer: str
    channels: tuple[str, ...]
    delay_hours: float
    window_hours: float
    cap_days: int
    min_p_churn: float | None = None

    def __post_init__(self) -> None:
        if self.trigger_event not in TRIGGER_EVENTS:
            raise ValueError(f"trigger {self.name}: trigger_event {self.trigger_event!r} is not one of {TRIGGER_EVENTS}")
        if self.offer not in OFFERS:
            raise ValueError(f"trigger {self.name}: offer {self.offer!r} is not one of {sorted(OFFERS)}")
        if unknown := [c for c in self.channels if c not in CHANNELS] or not self.channels:
            raise ValueError(f"trigger {self.name}: channels {unknown or 'none'} (known: {', '.join(CHANNELS)})")
        if self.delay_hours < 0 or self.window_hours <= 0 or self.cap_days < 1:
            raise ValueError(f"trigger {self.name}: delay_hours >= 0, window_hours > 0 and cap_days >= 1 are required")

    def campaign_id(self, cycle_id: str, channel: str) -> str:
        """The campaign its sends on ``channel`` land under: one per trigger, cycle and channel (a campaign has one
        channel in the landing contract), ``trigger-<name>-<cycle_id>-<channel>``; its holdout is the members held
        out there, and ``ml.triggers.trigger_arms`` pools a trigger's campaigns."""
        return f"{TRIGGER_PREFIX}{self.name}-{cycle_id}-{channel}"


TRIGGER_PREFIX = "trigger-"
TRIGGERS: dict[str, TriggerRule] = {rule.name: rule for rule in (
    # In priority order: a member due for two triggers in one run gets the first.
    TriggerRule("cart_abandonment", "cart_abandoned", "pct10", ("email", "push", "kakao"), delay_hours=1,
                window_hours=7 * 24, cap_days=7),
    TriggerRule("win_back", "last_purchase", "pct20", ("email", "sms", "kakao"), delay_hours=60 * 24,
                window_hours=60 * 24, cap_days=30, min_p_churn=0.5),
    TriggerRule("post_purchase_cross_sell", "purchase", "message", ("email", "kakao"), delay_hours=3 * 24,
                window_hours=7 * 24, cap_days=14),
    TriggerRule("browse_abandonment", "browse_abandoned", "message", ("push", "email"), delay_hours=2,
                window_hours=7 * 24, cap_days=7),
    TriggerRule("membership_anniversary", "signup", "pct10", ("kakao", "email"), delay_hours=0,
                window_hours=7 * 24, cap_days=300),
)}


def trigger_of_campaign(campaign_id: str) -> str | None:
    """The trigger a campaign ID belongs to (``trigger-<name>-<cycle_id>-<channel>``), None for any other campaign."""
    if not campaign_id.startswith(TRIGGER_PREFIX):
        return None
    rest = campaign_id[len(TRIGGER_PREFIX):]
    return next((name for name in TRIGGERS if rest.startswith(f"{name}-")), None)


def cycle_of_trigger_campaign(campaign_id: str) -> str | None:
    """The cycle_id of a trigger's campaign (``trigger-<name>-<cycle_id>-<channel>``), None for any other campaign."""
    name = trigger_of_campaign(campaign_id)
    return None if name is None else campaign_id[len(TRIGGER_PREFIX) + len(name) + 1:].rsplit("-", 1)[0]
