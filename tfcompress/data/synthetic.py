"""The built-in e-commerce dataset: deterministic, synthetic, no download.

Users (id, age bucket, region, device) and items (id, category, brand, price, a short product title) get
hidden latent vectors; impression events (user, item, hour, list position) get a click with probability
``sigmoid(logit)``, where the logit adds the user-item affinity (latent dot product), item popularity,
position and hour effects and two feature crosses (device x category, age x price). The intercept is
solved so that the click rate hits ``click_rate`` (3-10%). A model that learns the affinities and the
crosses beats one that does not, which is what makes the teacher/student story measurable.

Example:
    >>> data = make_ecommerce(events=2000, seed=0)
    >>> train, val, test = data.split()
    >>> len(train) + len(val) + len(test)
    2000
    >>> bool(0.03 <= data.events["click"].mean() <= 0.10)
    True
"""
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import TFCompressError
from .spec import Feature, FeatureSpec

MIN_EVENTS = 1_000
MAX_EVENTS = 10_000_000
#: impressions drawn at a time (a shop of up to this many events is drawn in one piece)
CHUNK_EVENTS = 1_000_000

CATEGORIES = (
    "shirt", "dress", "sneaker", "jacket", "jeans", "handbag", "watch", "headphones", "lamp", "mug",
    "backpack", "sunglasses", "blender", "pillow", "skincare", "perfume", "novel", "puzzle", "yoga-mat",
    "phone-case",
)
ADJECTIVES = (
    "classic", "slim", "waterproof", "vintage", "organic", "wireless", "premium", "compact", "soft",
    "sport", "luxury", "eco", "mini", "oversized", "handmade", "smart",
)
COLORS = ("black", "white", "red", "blue", "green", "beige", "grey", "pink", "navy", "gold")
_SYLLABLES = ("no", "va", "ri", "ko", "lu", "xen", "tra", "mi", "zo", "pel", "quo", "da", "fi", "ro", "sa")

N_AGE, N_REGION, N_DEVICE, N_PRICE, N_HOUR, N_POSITION = 7, 20, 3, 5, 24, 10
LATENT_DIM = 8
DAYS = 30


@dataclass
class EcommerceData:
    """Users, items and impression events of the synthetic shop, with their :class:`FeatureSpec`."""

    users: pd.DataFrame
    items: pd.DataFrame
    events: pd.DataFrame
    spec: FeatureSpec
    seed: int

    def split(self, fractions=(0.8, 0.1, 0.1)):
        """Time-ordered train/validation/test DataFrames (earliest events train, latest test)."""
        return time_split(self.events, fractions)


def time_split(events, fractions=(0.8, 0.1, 0.1), time_column="timestamp"):
    """Split ``events`` by time into consecutive parts of the given fractions.

    Example:
        >>> df = pd.DataFrame({"timestamp": range(10), "x": range(10)})
        >>> [len(p) for p in time_split(df, (0.6, 0.2, 0.2))]
        [6, 2, 2]
    """
    if abs(sum(fractions) - 1.0) > 1e-6 or any(f <= 0 for f in fractions):
        raise TFCompressError(f"split fractions must be positive and sum to 1, got {fractions}")
    df = events.sort_values(time_column, kind="stable").reset_index(drop=True)
    n = len(df)
    bounds = np.floor(np.cumsum((0,) + tuple(fractions)) * n + 1e-9).astype(int)
    bounds[-1] = n
    parts = [df.iloc[a:b].reset_index(drop=True) for a, b in zip(bounds[:-1], bounds[1:])]
    small = [i for i, p in enumerate(parts) if len(p) < 1]
    if small:
        raise TFCompressError(
            f"{n} events are too few to split into {len(fractions)} parts: use at least {MIN_EVENTS} events"
        )
    return parts


def sizes_for(events):
    """Users, items and brands for an events count (more events, bigger catalogue)."""
    n_users = int(np.clip(events // 40, 50, 2_000_000))
    n_items = int(np.clip(events // 150, 30, 200_000))
    n_brands = int(np.clip(n_items // 20, 10, 2_000))
    return n_users, n_items, n_brands


def make_ecommerce(events=100_000, seed=0, *, click_rate=0.05):
    """Generate the synthetic shop: ``events`` impressions (1e3 to 1e7), reproducible by ``seed``.

    Example:
        >>> d = make_ecommerce(events=1000, seed=1)
        >>> sorted(d.spec.names)[:3]
        ['age_bucket', 'brand', 'category']
    """
    shop = _Shop.draw(events, seed, click_rate)
    ev = pd.concat(list(shop.chunks()), ignore_index=True)
    return EcommerceData(users=shop.users, items=shop.items, events=ev, spec=shop.spec, seed=seed)


def ecommerce_chunks(events=100_000, seed=0, *, click_rate=0.05):
    """``(spec, chunks)``: the shop's :class:`FeatureSpec` and an iterator of its event frames, time-ordered,
    :data:`CHUNK_EVENTS` rows each (the last fewer). Users and items are drawn once; the impressions chunk by
    chunk, so memory stays bounded by one chunk. Joined, the chunks are ``make_ecommerce(events, seed).events``.

    Example:
        >>> spec, chunks = ecommerce_chunks(2000, seed=3)
        >>> pd.concat(list(chunks), ignore_index=True).equals(make_ecommerce(2000, seed=3).events)
        True
    """
    shop = _Shop.draw(events, seed, click_rate)
    return shop.spec, shop.chunks()


@dataclass
class _Shop:
    """The drawn users and items of a shop (with their hidden structure) and the rng that draws chunk 0."""

    events: int
    seed: int
    click_rate: float
    rng: object
    world: object
    users: pd.DataFrame
    u_lat: np.ndarray
    user_act: np.ndarray
    items: pd.DataFrame
    v_lat: np.ndarray
    item_pop: np.ndarray
    spec: FeatureSpec

    @classmethod
    def draw(cls, events, seed, click_rate):
        events = _check_shop_args(events, click_rate)
        rng = np.random.default_rng(seed)
        n_users, n_items, n_brands = sizes_for(events)
        world = _World.draw(rng, n_brands)  # the draws below keep this order: same seed, same shop
        users, u_lat = _draw_users(rng, n_users, world)
        items, v_lat, item_pop = _draw_items(rng, n_items, n_brands, world)
        user_act = rng.lognormal(0, 0.7, n_users)
        return cls(events, seed, click_rate, rng, world, users, u_lat, user_act / user_act.sum(), items, v_lat,
                   item_pop, ctr_spec(n_users, n_items, n_brands))

    def chunks(self):
        """The event frames, chunk by chunk: chunk ``k`` covers its share of the 30 days, drawn by the shop's
        rng (chunk 0) or one seeded by ``(seed, k)``, so each chunk is the same whatever reads it."""
        n = self.events
        for k, start in enumerate(range(0, n, CHUNK_EVENTS)):
            stop = min(n, start + CHUNK_EVENTS)
            rng = self.rng if k == 0 else np.random.default_rng([self.seed, k])
            window = (DAYS * 86400 * start // n, DAYS * 86400 * stop // n)
            ev = _draw_impressions(rng, stop - start, window, self)
            yield _event_frame(ev, self.users, self.items)


def _check_shop_args(events, click_rate):
    """``events`` as an int, after checking it and ``click_rate`` against their ranges."""
    try:
        events = int(events)
    except (TypeError, ValueError):
        raise TFCompressError(f"events must be a whole number, got {events!r}") from None
    if not MIN_EVENTS <= events <= MAX_EVENTS:
        raise TFCompressError(f"events = {events} is outside [{MIN_EVENTS}, {MAX_EVENTS}]")
    if not 0.03 <= click_rate <= 0.10:
        raise TFCompressError(f"click_rate = {click_rate} is outside [0.03, 0.10]")
    return events


@dataclass
class _World:
    """World-level hidden structure shared by users and items (latent vectors, crosses, brands)."""

    age_lat: np.ndarray
    region_lat: np.ndarray
    device_lat: np.ndarray
    cat_lat: np.ndarray
    brand_lat: np.ndarray
    device_x_cat: np.ndarray
    cat_peak_hour: np.ndarray
    brand_cat: np.ndarray
    brand_names: np.ndarray

    @classmethod
    def draw(cls, rng, n_brands):
        return cls(
            age_lat=rng.normal(0, 1.0, (N_AGE, LATENT_DIM)),
            region_lat=rng.normal(0, 0.5, (N_REGION, LATENT_DIM)),
            device_lat=rng.normal(0, 0.3, (N_DEVICE, LATENT_DIM)),
            cat_lat=rng.normal(0, 1.0, (len(CATEGORIES), LATENT_DIM)),
            brand_lat=rng.normal(0, 0.5, (n_brands, LATENT_DIM)),
            device_x_cat=rng.normal(0, 0.5, (N_DEVICE, len(CATEGORIES))),
            cat_peak_hour=rng.uniform(0, 24, len(CATEGORIES)),
            brand_cat=rng.integers(0, len(CATEGORIES), n_brands),
            brand_names=_brand_names(rng, n_brands),
        )


def _draw_users(rng, n_users, world):
    """The users frame and their latent vectors."""
    users = pd.DataFrame({
        "user_id": np.arange(1, n_users + 1, dtype=np.int32),
        "age_bucket": rng.integers(0, N_AGE, n_users).astype(np.int32) + 1,
        "region": rng.integers(0, N_REGION, n_users).astype(np.int32) + 1,
        "device": rng.choice(N_DEVICE, n_users, p=[0.45, 0.4, 0.15]).astype(np.int32) + 1,
    })
    u_lat = (world.age_lat[users.age_bucket - 1] + world.region_lat[users.region - 1]
             + world.device_lat[users.device - 1] + rng.normal(0, 0.8, (n_users, LATENT_DIM)))
    return users, u_lat


def _draw_items(rng, n_items, n_brands, world):
    """The items frame (with titles), their latent vectors and their popularity (sums to 1)."""
    brand = rng.integers(0, n_brands, n_items)
    category = np.where(rng.random(n_items) < 0.8, world.brand_cat[brand],
                        rng.integers(0, len(CATEGORIES), n_items))
    log_price = rng.normal(3.0 + 0.15 * category % 2, 0.8, n_items)
    price_bucket = np.digitize(log_price, np.quantile(log_price, [0.2, 0.4, 0.6, 0.8]))
    items = pd.DataFrame({
        "item_id": np.arange(1, n_items + 1, dtype=np.int32),
        "category": category.astype(np.int32) + 1,
        "brand": brand.astype(np.int32) + 1,
        "price_bucket": price_bucket.astype(np.int32) + 1,
        "price": np.round(np.exp(log_price), 2).astype(np.float32),
        "title": _titles(rng, world.brand_names[brand], category),
    })
    v_lat = world.cat_lat[category] + world.brand_lat[brand] + rng.normal(0, 0.6, (n_items, LATENT_DIM))
    item_pop = 1.0 / (1.0 + rng.permutation(n_items)) ** 0.8
    item_pop /= item_pop.sum()
    return items, v_lat, item_pop


def _draw_impressions(rng, events, window, shop):
    """The raw impression columns of ``events`` impressions in the time ``window`` (seconds): who saw what,
    when, where in the list, and whether they clicked."""
    users, items = shop.users, shop.items
    ev_user = rng.choice(len(users), events, p=shop.user_act)
    ev_item = rng.choice(len(items), events, p=shop.item_pop)
    ts = np.sort(rng.integers(window[0], window[1], events)).astype(np.int64)
    hour = ((ts // 3600) % 24).astype(np.int32)
    position = np.minimum(rng.geometric(0.25, events), N_POSITION).astype(np.int32)
    signal = _click_signal(ev_user, ev_item, hour, position, users, shop.u_lat, items, shop.v_lat,
                           shop.item_pop, shop.world)
    p_click = 1.0 / (1.0 + np.exp(-(signal + _solve_intercept(signal, shop.click_rate))))
    click = (rng.random(events) < p_click).astype(np.int32)
    return pd.DataFrame({
        "timestamp": ts,
        "user_id": users.user_id.to_numpy()[ev_user],
        "item_id": items.item_id.to_numpy()[ev_item],
        "hour": hour + 1,
        "position": position,
        "click": click,
    })


def _click_signal(ev_user, ev_item, hour, position, users, u_lat, items, v_lat, item_pop, world):
    """The click logit before the intercept: affinity, popularity, two crosses, hour and position."""
    affinity = np.einsum("ij,ij->i", u_lat[ev_user], v_lat[ev_item]) / np.sqrt(LATENT_DIM)
    pop_z = np.log(item_pop[ev_item] * len(items))
    pop_z = (pop_z - pop_z.mean()) / (pop_z.std() + 1e-9)
    age = users.age_bucket.to_numpy()[ev_user] - 1
    dev = users.device.to_numpy()[ev_user] - 1
    cat = items.category.to_numpy()[ev_item] - 1
    price_bucket = items.price_bucket.to_numpy()[ev_item] - 1
    cross_dev_cat = world.device_x_cat[dev, cat]
    cross_age_price = -0.35 * ((age - 3) / 3.0) * (price_bucket - 2)
    hour_effect = 0.4 * np.cos(2 * np.pi * (hour - world.cat_peak_hour[cat]) / 24)
    pos_effect = -0.5 * np.log(position)
    return 1.3 * affinity + 0.3 * pop_z + cross_dev_cat + cross_age_price + hour_effect + pos_effect


def _event_frame(ev, users, items):
    """The events joined with their user and item features, time-ordered, with the final dtypes."""
    ev = ev.merge(users, on="user_id", how="left").merge(
        items[["item_id", "category", "brand", "price_bucket", "price"]], on="item_id", how="left")
    ev["price"] = ((np.log(ev["price"]) - 3.0) / 1.0).astype(np.float32)
    ev = ev.sort_values("timestamp", kind="stable").reset_index(drop=True)
    for c in ev.columns:
        if c not in ("timestamp", "price"):
            ev[c] = ev[c].astype(np.int32)
    return ev


def ctr_spec(n_users, n_items, n_brands):
    """The CTR feature spec of the built-in data for a catalogue of the given size."""
    return FeatureSpec(
        [
            Feature("user_id", "categorical", n_users + 1, "user"),
            Feature("age_bucket", "categorical", N_AGE + 1, "user"),
            Feature("region", "categorical", N_REGION + 1, "user"),
            Feature("device", "categorical", N_DEVICE + 1, "user"),
            Feature("item_id", "categorical", n_items + 1, "item"),
            Feature("category", "categorical", len(CATEGORIES) + 1, "item"),
            Feature("brand", "categorical", n_brands + 1, "item"),
            Feature("price_bucket", "categorical", N_PRICE + 1, "item"),
            Feature("price", "numeric", 0, "item"),
            Feature("hour", "categorical", N_HOUR + 1, "context"),
            Feature("position", "categorical", N_POSITION + 1, "context"),
        ],
        label="click",
        objective="binary",
    )


def _solve_intercept(signal, rate):
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.mean(1 / (1 + np.exp(-(signal + mid)))) > rate:
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2


def _brand_names(rng, n):
    names, seen = [], set()
    while len(names) < n:
        k = rng.integers(2, 4)
        name = "".join(rng.choice(_SYLLABLES, k)).capitalize()
        if name not in seen or len(seen) > 3000:
            seen.add(name)
            names.append(name if name not in names else f"{name}{len(names)}")
    return np.array(names)


def _titles(rng, brands, category):
    adj = np.array(ADJECTIVES)[rng.integers(0, len(ADJECTIVES), len(brands))]
    col = np.array(COLORS)[rng.integers(0, len(COLORS), len(brands))]
    noun = np.array(CATEGORIES)[category]
    return [f"{b} {a} {c} {n}" for b, a, c, n in zip(brands, adj, col, noun)]
