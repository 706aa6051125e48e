"""Who may be contacted with which action, rule by rule, so a plan's summary can say which rule stopped whom."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.decide.config import DesignConfig
from ml.decide.economics import ScoredCustomers


@dataclass(frozen=True)
class Eligibility:
    """Who may be contacted, rule by rule: per customer x enabled channel, and per customer."""

    recorded: np.ndarray  # (n, channels) a consent record exists (consent_<channel> is not missing)
    consented: np.ndarray  # (n, channels) opted in, or no record and assume_consent
    deliverable: np.ndarray  # (n, channels) consented and the newest send on the channel did not bounce
    channel_open: np.ndarray  # (channels,) the channel's budget is not 0
    subscribed: np.ndarray  # (n,) no unsubscribe in the last 30 days
    under_cap: np.ndarray  # (n,) fewer contacts in the last 30 days than the cap
    # (n,) fewer contacts in the last 30 days than the customer's own cap (ml.frequency), where they have one
    under_frequency_cap: np.ndarray
    scored: np.ndarray  # (n,) purchase probability, spend and margin rate are known

    def allowed(self, action_channel: np.ndarray) -> np.ndarray:
        """(n, actions): the action's channel is deliverable and open, and the customer is eligible."""
        eligible = self.subscribed & self.under_cap & self.under_frequency_cap & self.scored
        return (self.deliverable[:, action_channel] & self.channel_open[action_channel][None, :]
                & eligible[:, None])

    def funnel(self) -> dict[str, int]:
        """Customers left after each rule in turn, over the enabled channels (what ``reach`` reports)."""
        consented = self.consented.any(axis=1)
        deliverable = self.deliverable.any(axis=1)
        open_ = (self.deliverable & self.channel_open[None, :]).any(axis=1)
        subscribed = open_ & self.subscribed
        under_cap = subscribed & self.under_cap
        under_own_cap = under_cap & self.under_frequency_cap
        return {
            "customers": len(self.subscribed),
            "consent_recorded": int(self.recorded.any(axis=1).sum()),
            "consent_assumed": int((self.consented & ~self.recorded).any(axis=1).sum()),
            "consented": int(consented.sum()),
            "deliverable": int(deliverable.sum()),
            "channel_open": int(open_.sum()),
            "not_unsubscribed": int(subscribed.sum()),
            "under_contact_cap": int(under_cap.sum()),
            "under_frequency_cap": int(under_own_cap.sum()),
            "scored": int((under_own_cap & self.scored).sum()),
        }

    def bounced_consents(self, channels: tuple[str, ...]) -> dict[str, int]:
        """Per channel, the customers who consent to it but whose newest send on it bounced."""
        closed = self.consented & ~self.deliverable
        return {c: int(closed[:, i].sum()) for i, c in enumerate(channels)}


def contact_rules(customers: ScoredCustomers, config: DesignConfig) -> Eligibility:
    """The rules under consent, bounces, unsubscribes, the contact caps and closed channels. Consent is hard: a
    recorded opt-out never gets a contact, and a missing consent (no record for the member and channel) counts as
    no consent unless ``assume_consent``. A channel whose newest send bounced is closed: it would deliver nothing
    (a missing ``bounced_<channel>`` is no bounce). A customer's own ``frequency_cap`` (``ml.frequency``) binds
    beside the global ``contact_cap``; a missing one (the column or a value) does not."""
    df = customers.frame
    contacts = df["contacts_last_30d"].fillna(config.contact_cap).to_numpy(float)
    own_cap = (pd.to_numeric(df["frequency_cap"], errors="coerce").to_numpy(float) if "frequency_cap" in df
               else np.full(len(df), np.nan))
    recorded = np.column_stack([_recorded(df, f"consent_{c}") for c in config.channels])
    opted_in = np.column_stack([_flag(df, f"consent_{c}") for c in config.channels])
    # Consent is assumed only for members: the senders address a member ID, and a customer known by a cookie
    # alone has neither a record nor a way to be reached.
    member = df["member_id"].notna().to_numpy(bool)
    consented = opted_in | (~recorded & member[:, None] if config.assume_consent else False)
    bounced = np.column_stack([_flag(df, f"bounced_{c}") for c in config.channels])
    return Eligibility(
        recorded=recorded, consented=consented, deliverable=consented & ~bounced,
        channel_open=config.channel_budget_vector > 0,
        subscribed=~df["unsubscribed_recently"].fillna(True).to_numpy(bool),
        under_cap=contacts < config.contact_cap,
        under_frequency_cap=np.isnan(own_cap) | (contacts < own_cap),
        scored=np.isfinite(customers.p_buy) & np.isfinite(customers.spend) & np.isfinite(customers.margin_rate),
    )


def _recorded(df: pd.DataFrame, column: str) -> np.ndarray:
    """Where a consent column holds a value: True or False was recorded, missing means no record."""
    return df[column].notna().to_numpy(bool) if column in df else np.zeros(len(df), dtype=bool)


def _flag(df: pd.DataFrame, column: str) -> np.ndarray:
    """A boolean input column; missing (the column or a value) is False."""
    return df[column].fillna(False).to_numpy(bool) if column in df else np.zeros(len(df), dtype=bool)
