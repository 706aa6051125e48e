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
