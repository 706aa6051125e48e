"""What decisioning adds to the action catalogue, and the columns of the frame it designs from.

The catalogue itself lives in campaign_loop.actions (shared with the simulator); here only what decisioning
adds: where each action's uplift is found, what its offer gives away, when it is sent, under which campaign.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import time
from types import MappingProxyType

import numpy as np

from campaign_loop.actions import OFFERS, Action, Offer
from campaign_loop.config import CHANNELS

# Local send hours, in the retailer's time zone (Settings ``timezone``): inside 08:00-21:00, the window in
# which Korean law (Network Act art. 50) allows advertising messages without a separate night-time consent
# (the US TCPA's telemarketing hours are the same, 8 a.m. to 9 p.m. at the recipient's), at each channel's
# usual engagement peak.
SEND_TIME: Mapping[str, time] = MappingProxyType({
    "email": time(9, 0), "push": time(19, 0), "sms": time(11, 0), "kakao": time(12, 0),
})


def uplift_column(action: Action) -> str:
    """The input column holding the uplift model's prediction for ``action``."""
    return f"uplift__{action.name}"


def discount_per_order(offer: Offer, spend: np.ndarray) -> np.ndarray:
    """Discount ``offer`` grants on an order of ``spend``, in currency.

    free_shipping has no value in the catalogue yet, so it is counted as free (0) until it has one.
    """
    if offer.offer_type == "percent_off":
        return spend * (offer.offer_value / 100.0)
    if offer.offer_type == "amount_off":
        return np.minimum(offer.offer_value, spend)
    return np.zeros_like(spend, dtype=float)


def action_catalogue(offers: tuple[str, ...] = tuple(OFFERS), channels: tuple[str, ...] = CHANNELS) -> tuple[Action, ...]:
    """Every allowed offer x channel, offer-major; 'no contact' is implicit (index -1)."""
    return tuple(Action(OFFERS[o], c) for o in offers for c in channels)


def campaign_id(cycle_id: str, action: Action) -> str:
    """One campaign per action and cycle; this is what lands as utm_campaign and in campaign_sends."""
    return f"{cycle_id}-{action.offer.name}-{action.channel}"


NO_CONTACT = -1
BASE_COLUMNS: tuple[str, ...] = (
    "customer_id", "member_id", "unsubscribed_recently", "contacts_last_30d", "segment",
    "p_buy", "expected_spend", "margin_rate",
)
