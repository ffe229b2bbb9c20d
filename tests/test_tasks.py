import numpy as np

from entropyeng.tasks import spiral_classification, spiral_mlp


def test_spiral_classification_follows_eq5():
    X, y = spiral_classification(20, seed=3)
    assert X.shape == (40, 2) and sorted(set(y)) == [0.0, 1.0] and y.sum() == 20
    r = np.hypot(X[:, 0], X[:, 1])
    assert np.all((r > 0.6) & (r < 5.5))  # r ~ U(1, 5) plus noise of 0.1
    # the angle is 2 r + pi y up to the noise (0.1 in position: ~0.2 in 2 r); the other label's
    # spiral is pi away
    theta = np.arctan2(X[:, 1], X[:, 0])
    resid = np.abs(np.angle(np.exp(1j * (theta - 2 * r - np.pi * y))))
    other = np.abs(np.angle(np.exp(1j * (theta - 2 * r - np.pi * (1 - y)))))
    assert np.median(resid) < 0.4 and np.all(resid < other)
    X2, _ = spiral_classification(20, seed=4)
    assert not np.allclose(X, X2)


def test_spiral_mlp_has_the_papers_parameter_count():
    assert sum(p.numel() for p in spiral_mlp(4, 8).parameters()) == 249
