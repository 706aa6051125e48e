"""The simulated world: products, people and their latent traits, identities, and persisted state.

People are a dict of equal-length numpy columns (``People``), one row per person, ``person_id`` equal
to the row number. All draws are vectorised; nothing loops over people.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import stats

from campaign_loop.config import CHANNELS, Settings
from sim import ids

People = dict[str, np.ndarray]

CATEGORIES: tuple[str, ...] = ("fashion", "beauty", "grocery", "home", "kitchen", "electronics", "sports", "kids")
CATEGORY_MEDIAN_PRICE = np.array([35.0, 22.0, 8.0, 28.0, 25.0, 90.0, 40.0, 24.0])
PRODUCTS_PER_CATEGORY = 40
CITIES: tuple[str, ...] = ("Seoul", "Busan", "Incheon", "Daegu", "Daejeon", "Gwangju", "Suwon", "Ulsan", "Seongnam", "Goyang")
CITY_WEIGHT = np.array([0.36, 0.12, 0.10, 0.08, 0.06, 0.06, 0.07, 0.04, 0.06, 0.05])
STORES_PER_CITY = 3
SURNAMES: tuple[str, ...] = ("Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Cho", "Yoon", "Jang", "Lim", "Han", "Oh", "Seo", "Shin", "Kwon")
SURNAME_WEIGHT = np.array([21, 15, 8, 5, 5, 2.5, 2, 2, 2, 2, 1.5, 1.5, 1.5, 1.5, 1.3])
GIVEN_NAMES: tuple[str, ...] = (
    "Minjun", "Seoyeon", "Jiwoo", "Hayoon", "Doyun", "Seojun", "Jiho", "Jiyu", "Eunwoo", "Hajun", "Sua", "Jian",
    "Yejun", "Harin", "Siwoo", "Yuna", "Juwon", "Chaewon", "Minseo", "Jihoon", "Soyeon", "Hyunwoo", "Dahyun",
    "Jimin", "Taeyang", "Eunji", "Sungmin", "Yerin", "Donghyun", "Nayeon",
)
EMAIL_DOMAINS: tuple[str, ...] = ("naver.com", "gmail.com", "daum.net", "kakao.com", "hanmail.net")
TIERS: tuple[str, ...] = ("bronze", "silver", "gold", "vip")
GENDERS: tuple[str, ...] = ("F", "M", "U")

# The latent response classes of uplift modelling.
LOST_CAUSE, PERSUADABLE, SURE_THING, SLEEPING_DOG = 0, 1, 2, 3
RESPONSE_CLASSES: tuple[str, ...] = ("lost_cause", "persuadable", "sure_thing", "sleeping_dog")


@dataclass(frozen=True)
class WorldParams:
    """The world's distributions; every number is documented in docs/simulator.md."""

    rate_shape: float = 0.6  # weekly purchase rate lambda ~ Gamma(shape, scale): mean 0.042/week
    rate_scale: float = 0.07
    dropout_a: float = 1.2  # dropout after each purchase p ~ Beta(a, b): mean 0.12
    dropout_b: float = 9.0
    spend_shape: float = 4.0  # per-person target order value ~ Gamma(shape, scale): mean 32 (whole units and shipping lift the realised average order to ~70)
    spend_scale: float = 8.0
    order_value_shape: float = 6.0  # order value ~ Gamma(shape, mean/shape) around the person's mean
    affinity_concentration: float = 0.6
    member_share: float = 0.70
    consent_opt_in: tuple[float, float, float, float] = (0.65, 0.35, 0.45, 0.55)  # email, push, sms, kakao
    unreachable_share: float = 0.01  # bad address / uninstalled app per channel: sends bounce
    sure_thing_share: float = 0.15  # the highest-rate people (top 15% of a noisy rate)
    persuadable_share: float = 0.30  # of the rest
    sleeping_dog_share: float = 0.10  # of the rest
    # Who responds is partly predictable from what the retailer sees: the response class follows a
    # latent "marketing responsiveness" correlated (Gaussian copula, correlation below) with the traits
    # that drive observable behaviour: open propensity (opens), online share (sessions, online orders)
    # and price sensitivity (coupon redemption). Persuadables are the top persuadable_share of it,
    # sleeping dogs the bottom sleeping_dog_share; the class shares are unchanged. 0 restores the old
    # world in which the class was independent of everything observable.
    response_correlation: float = 0.5
    response_weights: tuple[float, float, float] = (0.45, 0.35, 0.20)  # open_prop, online_share, price_sens
    lift_shape: float = 2.0  # persuadable uplift at channel affinity 1 ~ Gamma: mean 1.5 pp per period
    lift_scale: float = 0.0075
    discount_gain: float = 8.0  # uplift multiplier 1 + gain * price_sensitivity * discount share
    weekly_arrival_share: float = 0.003  # new people per week, as a share of settings.customers
    shared_device_share: float = 0.03  # people sharing one device with another person of their household


PARAMS = WorldParams()

# State: bit k (cookie k, 0-3) or 4 + k (device k, 0-1) is set once the identifier carried the person's login.
LINKED_IDENTS = "linked_idents"


def draw_products(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, 0, 1])
    n = len(CATEGORIES) * PRODUCTS_PER_CATEGORY
    category = np.repeat(np.arange(len(CATEGORIES)), PRODUCTS_PER_CATEGORY)
    # Prices end in .90 like a shelf label; margins 30-60% of price.
    price_units = np.maximum(1, np.floor(CATEGORY_MEDIAN_PRICE[category] * rng.lognormal(0.0, 0.55, n)))
    price = (price_units * 100 - 10).astype(np.int64)
    margin = rng.uniform(0.30, 0.60, n)
    unit_cost = np.round(price * (1 - margin)).astype(np.int64)
    popularity = 1.0 / (1 + rng.permutation(n) % PRODUCTS_PER_CATEGORY) ** 0.8
    return {
        "product_number": np.arange(n),
        "category": category,
        "price": price,
        "unit_cost": unit_cost,
        "popularity": popularity,
        "quality": rng.beta(5.0, 2.0, n),
    }


def product_choice_keys(products: dict[str, np.ndarray]) -> np.ndarray:
    """Keys for choosing a product: category index + cumulative popularity share within the category."""
    cat = products["category"]
    pop = products["popularity"]
    cum = np.zeros(len(cat))
    for c in range(len(CATEGORIES)):
        sel = cat == c
        cum[sel] = np.cumsum(pop[sel]) / pop[sel].sum()
    return cat + cum


def choose_products(
    rng: np.random.Generator, products: dict[str, np.ndarray], keys: np.ndarray, affinity: np.ndarray
) -> np.ndarray:
    """One product per row of ``affinity`` (rows: category weights), by affinity then popularity."""
    cum = np.cumsum(affinity, axis=1)
    u = rng.random(len(affinity)) * cum[:, -1]
    cat = np.minimum((u[:, None] > cum).sum(axis=1), len(CATEGORIES) - 1)
    return np.minimum(np.searchsorted(keys, cat + rng.random(len(cat)), side="right"), len(keys) - 1)


def member_numbers(person_id: np.ndarray) -> np.ndarray:
    # A bijection of the person number, so membership IDs neither collide nor reveal arrival order.
    return (np.asarray(person_id, dtype=np.int64) * 7_368_787 + 10_000_019) % 1_000_000_000


def member_ids(person_id: np.ndarray) -> pa.Array:
    return ids.padded(member_numbers(person_id), 9, "M")


def draw_people(
    rng: np.random.Generator, n: int, first_id: int, born: np.ndarray, p: WorldParams = PARAMS
) -> People:
    """Traits of n new people (person_id from first_id), first active at ``born`` (epoch seconds)."""
    lam = rng.gamma(p.rate_shape, p.rate_scale, n)
    noisy_rate = lam * rng.lognormal(0.0, 0.3, n)
    sure_cut = stats.gamma.ppf(1 - p.sure_thing_share, p.rate_shape, scale=p.rate_scale) * np.exp(0.045)
    u_seg = rng.random(n)
    member = rng.random(n) < p.member_share
    affinity = rng.gamma(p.affinity_concentration, 1.0, (n, len(CATEGORIES)))
    affinity /= affinity.sum(axis=1, keepdims=True)
    chan = rng.gamma(3.0, 1.0, (n, len(CHANNELS)))
    chan /= chan.mean(axis=1, keepdims=True)
    consent = (rng.random((n, len(CHANNELS))) < np.array(p.consent_opt_in)) & member[:, None]
    unreachable = rng.random((n, len(CHANNELS))) < p.unreachable_share
    city = rng.choice(len(CITIES), n, p=CITY_WEIGHT / CITY_WEIGHT.sum())
    person_id = np.arange(first_id, first_id + n, dtype=np.int64)
    # Households: a few people use another person's first device (shared tablet, family PC).
    device_owner = person_id.copy()
    sharer = np.flatnonzero(rng.random(n) < p.shared_device_share / 2)
    if n > 1 and len(sharer):
        partner = (sharer + rng.integers(1, n, len(sharer))) % n
        device_owner[sharer] = person_id[partner]
    people: People = {
        "person_id": person_id,
        "born": np.asarray(born, dtype=np.int64),
        "alive": np.ones(n, dtype=bool),
        "member": member,
        "signup": np.where(member, born, -1).astype(np.int64),
        "lam": lam.astype(np.float32),
        "p_drop": rng.beta(p.dropout_a, p.dropout_b, n).astype(np.float32),
        "spend": rng.gamma(p.spend_shape, p.spend_scale, n).astype(np.float32),
        "price_sens": rng.beta(2.0, 3.0, n).astype(np.float32),
        "online_share": rng.beta(1.5, 1.5, n).astype(np.float32),
        "app_share": rng.beta(2.0, 3.0, n).astype(np.float32),
        "response_class": np.zeros(n, dtype=np.int8),  # set below from the observable-linked traits
        "lift": rng.gamma(p.lift_shape, p.lift_scale, n).astype(np.float32),
        "dog_harm": rng.beta(2.0, 3.0, n).astype(np.float32),
        "open_prop": rng.beta(2.0, 8.0, n).astype(np.float32),
        "n_cookies": (1 + rng.binomial(3, 0.3, n)).astype(np.int8),
        "n_devices": (1 + (rng.random(n) < 0.35)).astype(np.int8),
        "device_owner": device_owner,
        LINKED_IDENTS: np.zeros(n, dtype=np.uint8),
        "city": city.astype(np.int16),
        "store": (city * STORES_PER_CITY + rng.integers(0, STORES_PER_CITY, n)).astype(np.int16),
        "birth_year": np.clip(np.round(rng.normal(1984, 13, n)), 1940, 2008).astype(np.int16),
        "gender": rng.choice(3, n, p=[0.50, 0.45, 0.05]).astype(np.int8),
        "surname": rng.choice(len(SURNAMES), n, p=SURNAME_WEIGHT / SURNAME_WEIGHT.sum()).astype(np.int16),
        "given": rng.integers(0, len(GIVEN_NAMES), n).astype(np.int16),
        "has_phone": rng.random(n) < 0.9,
        "tier": np.zeros(n, dtype=np.int8),
        "n_purchases": np.zeros(n, dtype=np.int32),
        "last_purchase": np.full(n, -1, dtype=np.int64),
    }
    people["response_class"] = response_class(people, noisy_rate > sure_cut, u_seg, p)
    for c, channel in enumerate(CHANNELS):
        people[f"aff_{channel}"] = chan[:, c].astype(np.float32)
        people[f"consent_{channel}"] = consent[:, c]
        people[f"unreachable_{channel}"] = unreachable[:, c]
    for k in range(len(CATEGORIES)):
        people[f"cat_{k}"] = affinity[:, k].astype(np.float32)
    return people


def responsiveness_score(people: People, p: WorldParams = PARAMS) -> np.ndarray:
    """z ~ N(0, 1): the weighted normal scores of open propensity, online share and price sensitivity
    (each through its own Beta CDF), the observable-linked part of the latent responsiveness."""
    scores = [
        stats.norm.ppf(np.clip(stats.beta.cdf(people["open_prop"], 2.0, 8.0), 1e-6, 1 - 1e-6)),
        stats.norm.ppf(np.clip(stats.beta.cdf(people["online_share"], 1.5, 1.5), 1e-6, 1 - 1e-6)),
        stats.norm.ppf(np.clip(stats.beta.cdf(people["price_sens"], 2.0, 3.0), 1e-6, 1 - 1e-6)),
    ]
    w = np.asarray(p.response_weights, dtype=float)
    return sum(wi * si for wi, si in zip(w, scores, strict=True)) / np.sqrt((w**2).sum())


def response_class(people: People, sure: np.ndarray, u_seg: np.ndarray, p: WorldParams = PARAMS) -> np.ndarray:
    """Latent response class: sure things by rate; the rest by a latent responsiveness.

    responsiveness = rho * z + sqrt(1 - rho^2) * e, with z = :func:`responsiveness_score` and
    e = Phi^-1(u_seg) independent noise. Top ``persuadable_share`` -> persuadable, bottom
    ``sleeping_dog_share`` -> sleeping dog: marginal shares exactly as before, P(persuadable | traits)
    between ~5 % and ~65 % at rho = 0.5 (:func:`class_probabilities`).
    """
    rho = p.response_correlation
    latent = rho * responsiveness_score(people, p) + np.sqrt(1.0 - rho**2) * stats.norm.ppf(np.clip(u_seg, 1e-12, 1 - 1e-12))
    q = stats.norm.cdf(latent)  # uniform on [0, 1]; equals u_seg when rho = 0
    return np.where(
        sure, SURE_THING,
        np.where(q > 1.0 - p.persuadable_share, PERSUADABLE,
                 np.where(q < p.sleeping_dog_share, SLEEPING_DOG, LOST_CAUSE)),
    ).astype(np.int8)


def class_probabilities(people: People, p: WorldParams = PARAMS) -> tuple[np.ndarray, np.ndarray]:
    """(P(persuadable), P(sleeping dog)) of each person who is not a sure thing, given the traits that
    :func:`response_class` ties to observable behaviour: the most anyone reading behaviour can know."""
    rho = p.response_correlation
    mean, sd = rho * responsiveness_score(people, p), max(np.sqrt(1.0 - rho**2), 1e-12)
    persuadable = stats.norm.sf((stats.norm.ppf(1.0 - p.persuadable_share) - mean) / sd)
    sleeping_dog = stats.norm.cdf((stats.norm.ppf(p.sleeping_dog_share) - mean) / sd)
    return persuadable, sleeping_dog


def category_affinity(people: People, rows: np.ndarray) -> np.ndarray:
    return np.stack([people[f"cat_{k}"][rows] for k in range(len(CATEGORIES))], axis=1)


def concat_people(a: People, b: People) -> People:
    """``a`` then ``b``; state that only ``a`` carries (a world's own, e.g. world d's contact load) starts at 0 in ``b``."""
    n_b = len(b["person_id"])
    return {k: np.concatenate([a[k], b[k] if k in b else np.zeros(n_b, dtype=a[k].dtype)]) for k in a}


def take_people(people: People, rows: np.ndarray) -> People:
    return {k: v[rows] for k, v in people.items()}


# ---- identities -------------------------------------------------------------------------------------

COOKIE, DEVICE, EMAIL, PHONE = 11, 12, 13, 14


def cookie_values(seed: int, person: np.ndarray, k: np.ndarray) -> pa.Array:
    return ids.hex_ids(ids.hash64(seed, COOKIE, person, k), "ck", 16)


def device_values(seed: int, device_owner: np.ndarray, person: np.ndarray, k: np.ndarray) -> pa.Array:
    """Device k of each person; device 0 is the household's when the person shares one."""
    owner = np.where(k == 0, device_owner, person)
    return ids.uuid_ids(ids.hash64(seed, DEVICE, owner, k), ids.hash64(seed, DEVICE + 100, owner, k))


def email_values(people: People, rows: np.ndarray) -> pa.Array:
    """E-mail of the people at ``rows`` of ``people`` (the address derives from their person_id)."""
    person = people["person_id"][rows]
    # (person * odd) mod 2^32 is a bijection: addresses never collide.
    local = ((np.asarray(person, dtype=np.int64) * 2_654_435_761 + 97) % (1 << 32)).astype(np.uint64)
    given = ids.vocab([g.lower() for g in GIVEN_NAMES], people["given"][rows])
    domain = ids.vocab(EMAIL_DOMAINS, person % len(EMAIL_DOMAINS))
    return ids.join(given, ".", ids.hex_ids(local << np.uint64(32), "", 8), "@", domain)


def phone_values(person: np.ndarray) -> pa.Array:
    number = (np.asarray(person, dtype=np.int64) * 48_271 + 12_345_678) % 100_000_000
    return ids.join("010-", ids.padded(number // 10_000, 4), "-", ids.padded(number % 10_000, 4))


def identities(seed: int, people: People) -> pa.Table:
    """Every identifier of the given people, with the person it belongs to (the identity truth)."""
    pid = people["person_id"]
    local = np.arange(len(pid))
    parts: list[pa.Table] = []

    def add(kind: str, values: pa.Array, person: np.ndarray, shared: np.ndarray) -> None:
        parts.append(pa.table({
            "identifier_type": pa.array(np.full(len(person), kind)),
            "identifier_value": values,
            "person_id": pa.array(person, type=pa.int64()),
            "shared": pa.array(shared, type=pa.bool_()),
        }))

    members = local[people["member"]]
    add("member_id", member_ids(pid[members]), pid[members], np.zeros(len(members), dtype=bool))
    rows = np.repeat(local, people["n_cookies"])
    k = np.arange(len(rows)) - np.repeat(np.cumsum(people["n_cookies"]) - people["n_cookies"], people["n_cookies"])
    add("cookie_id", cookie_values(seed, pid[rows], k), pid[rows], np.zeros(len(rows), dtype=bool))
    rows = np.repeat(local, people["n_devices"])
    k = np.arange(len(rows)) - np.repeat(np.cumsum(people["n_devices"]) - people["n_devices"], people["n_devices"])
    owner = people["device_owner"]
    shares = np.zeros(len(owner), dtype=bool)
    shares[owner != pid] = True
    shared_owner = np.isin(pid, owner[owner != pid])
    shared = (k == 0) & (shares[rows] | shared_owner[rows])
    add("device_id", device_values(seed, owner[rows], pid[rows], k), pid[rows], shared)
    add("email", email_values(people, local), pid, np.zeros(len(pid), dtype=bool))
    has_phone = local[people["has_phone"]]
    add("phone", phone_values(pid[has_phone]), pid[has_phone], np.zeros(len(has_phone), dtype=bool))
    return pa.concat_tables(parts)


# ---- persisted state ----------------------------------------------------------------------------------


class WorldStore:
    """The world's state between cycles, under ``truth_dir/world``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dir = settings.truth_dir / "world"

    def manifest(self) -> dict[str, object]:
        s = self.settings
        return {
            "seed": s.seed, "customers": s.customers, "start_date": s.start_date.isoformat(),
            "cycle_days": s.cycle_days, "history_weeks": s.history_weeks,
            "newsletter_history": s.newsletter_history, "world": s.world,
        }

    def write_manifest(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "manifest.json").write_text(json.dumps(self.manifest(), indent=2) + "\n")

    def check_manifest(self) -> None:
        path = self.dir / "manifest.json"
        if not path.exists():
            raise FileNotFoundError(f"no simulated world under {self.dir}: run cycle 0 first")
        stored = json.loads(path.read_text())
        stored.setdefault("world", "a")  # written before worlds other than a existed
        if stored != self.manifest():
            raise ValueError(
                f"the world under {self.dir} was created with {stored}, not {self.manifest()}; "
                "run cycle 0 again (or use another home) to create a new world"
            )

    def people_path(self, cycle: int) -> Path:
        return self.dir / f"people_after_{cycle:04d}.parquet"

    def last_cycle(self) -> int | None:
        """The newest cycle the world has lived through (None before cycle 0)."""
        done = [int(p.stem.rsplit("_", 1)[1]) for p in self.dir.glob("people_after_*.parquet")]
        return max(done, default=None)

    def save_people(self, cycle: int, people: People) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(people), self.people_path(cycle))

    def load_people(self, cycle: int) -> People:
        path = self.people_path(cycle)
        if not path.exists():
            raise FileNotFoundError(
                f"the state of the simulated world after cycle {cycle} is missing ({path}); "
                f"run cycle {cycle} before cycle {cycle + 1}"
            )
        table = pq.read_table(path)
        # Arrow hands out read-only views; the period updates people's state in place.
        people = {name: np.array(table.column(name).to_numpy()) for name in table.column_names}
        # A world saved before identifiers remembered their logins: none has carried one yet.
        people.setdefault(LINKED_IDENTS, np.zeros(len(people["person_id"]), dtype=np.uint8))
        return people

    def late_path(self, cycle: int) -> Path:
        return self.dir / f"late_events_{cycle:04d}.parquet"

    def identities_path(self, cycle: int) -> Path:
        return self.dir / "identities" / f"{cycle:04d}.parquet"
