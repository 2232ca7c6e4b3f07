"""The built-in e-commerce data: deterministic, realistic click rates, time-ordered splits, clear errors."""
import numpy as np
import pandas as pd
import pytest

from tfcompress.data import make_ecommerce, to_dataset, time_split
from tfcompress.errors import TFCompressError


def test_same_seed_same_data_and_other_seed_other_data():
    a, b, c = make_ecommerce(3000, seed=7), make_ecommerce(3000, seed=7), make_ecommerce(3000, seed=8)
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.items, b.items)
    assert not a.events["click"].equals(c.events["click"])


@pytest.mark.parametrize("events", [1_000, 10_000, 200_000])
def test_click_rate_is_between_3_and_10_percent(events):
    rate = make_ecommerce(events, seed=1).events["click"].mean()
    assert 0.03 <= rate <= 0.10


def test_tables_have_the_promised_columns(shop):
    assert {"user_id", "age_bucket", "region", "device"} <= set(shop.users.columns)
    assert {"item_id", "category", "brand", "price_bucket", "title"} <= set(shop.items.columns)
    assert {"hour", "position", "click", "timestamp"} <= set(shop.events.columns)
    assert shop.items["title"].str.split().str.len().min() >= 3


def test_spec_matches_the_data_and_ids_fit_their_vocabularies(shop):
    shop.spec.check_frame(shop.events)
    for f in shop.spec.categorical:
        assert shop.events[f.name].min() >= 1  # 0 is reserved for unknown ids
        assert shop.events[f.name].max() < f.vocab_size


def test_splits_are_time_ordered_and_complete(shop, shop_splits):
    train, val, test = shop_splits
    assert len(train) + len(val) + len(test) == len(shop.events)
    assert train["timestamp"].max() <= val["timestamp"].min()
    assert val["timestamp"].max() <= test["timestamp"].min()
    assert abs(len(train) / len(shop.events) - 0.8) < 0.01


def test_tf_data_pipeline_yields_named_features(shop):
    x, y = next(iter(to_dataset(shop.events, shop.spec, batch_size=64)))
    assert sorted(x) == sorted(shop.spec.names)
    assert x["user_id"].dtype.name == "int32" and x["price"].dtype.name == "float32"
    assert y.shape == (64,)


@pytest.mark.parametrize("events", [10, 20_000_000, "many"])
def test_bad_event_counts_are_clear_errors(events):
    with pytest.raises(TFCompressError, match="events"):
        make_ecommerce(events)


def test_split_fractions_must_sum_to_one():
    with pytest.raises(TFCompressError, match="sum to 1"):
        time_split(pd.DataFrame({"timestamp": np.arange(10)}), (0.5, 0.2))
