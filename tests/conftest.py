"""Shared fixtures: small, deterministic data and models (session-scoped so they are built once)."""
import numpy as np
import pytest

import tfcompress  # noqa: F401  (selects tf_keras before TensorFlow is imported anywhere else)
from tfcompress import keras


@pytest.fixture(scope="session")
def shop():
    """The built-in synthetic shop with 20,000 events, seed 0."""
    from tfcompress.data import make_ecommerce

    return make_ecommerce(events=20_000, seed=0)


@pytest.fixture(scope="session")
def shop_splits(shop):
    return shop.split()


@pytest.fixture(scope="session")
def trained_student(shop, shop_splits):
    """A small CTR student trained for 2 epochs on the shop's training split."""
    from tfcompress.data import to_dataset
    from tfcompress.models import ctr_student

    train, val, _ = shop_splits
    keras.utils.set_random_seed(0)
    model = ctr_student(shop.spec, embedding_dim=4, hidden=(16,))
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(to_dataset(train, shop.spec, batch_size=512, shuffle=True), epochs=2, verbose=0)
    return model


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))
