import numpy as np
import pytest

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


def test_paper_models_have_the_papers_parameter_counts():
    from entropyeng.tasks import house_mlp, mnist_cnn, regression_mlp, regressor_head

    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert [count(mnist_cnn(28, c)) for c in (2, 3, 4)] == [362, 646, 1002]  # Table 2
    assert [count(house_mlp(331, w)) for w in (10, 20, 50)] == [3331, 6661, 16651]  # Table 1
    assert [count(regressor_head(768, w)) for w in (2, 10, 50, 100)] == [1541, 7701, 38501, 77001]  # Table 3
    assert [count(regression_mlp(w)) for w in (30, 100, 300)] == [1051, 10501, 91501]  # Table 4


def test_resnet10_ln_has_no_batch_dependence():
    """LayerNorm, not BatchNorm: an image's logits do not depend on the rest of the batch."""
    import torch

    from entropyeng.tasks import resnet10_ln

    m = resnet10_ln(image_size=16)
    assert not any(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules())
    x = torch.randn(5, 3, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(m(x)[:1], m(x[:1]))
    assert m(x).shape == (5, 2)


def test_prepare_tabular_scales_and_one_hot_encodes():
    pd = __import__("pytest").importorskip("pandas")
    frame = pd.DataFrame(dict(a=[1.0, 2.0, np.nan, 4.0, 5.0, 6.0], kind=list("xyxyzx"),
                              price=[10.0, 20.0, 30.0, 40.0, 50.0, 60.0]))
    from entropyeng.tasks import prepare_tabular

    (X, y), (Xt, yt), info = prepare_tabular(frame, "price", test_fraction=0.5, seed=0)
    assert X.shape == (3, 4) and Xt.shape == (3, 4)  # a + kind_x, kind_y, kind_z
    assert info["features"] == ["a", "kind_x", "kind_y", "kind_z"]
    np.testing.assert_allclose(X[:, 0].mean(), 0, atol=1e-12)
    np.testing.assert_allclose(y.mean(), 0, atol=1e-12)
    np.testing.assert_allclose(y.std(), 1)
    assert set(np.unique(np.r_[X[:, 1:], Xt[:, 1:]])) <= {0.0, 1.0}
    assert np.isfinite(Xt).all()  # the missing value took the train median


def test_cifar_loader_picks_two_classes(tmp_path):
    import pickle

    from entropyeng.tasks import load_cifar_pair

    rng = np.random.default_rng(1)
    (tmp_path / "c").mkdir()
    labels = np.arange(60) % 10
    data = np.repeat(labels[:, None], 3072, axis=1).astype(np.uint8)  # each image's pixels = its label
    with open(tmp_path / "c" / "data_batch_1", "wb") as fh:
        pickle.dump({b"data": data, b"labels": list(labels)}, fh)
    (X, y), (Xt, yt) = load_cifar_pair(tmp_path / "c", ("frog", "deer"), n_train=6, n_test=6, seed=0)
    assert X.shape == (6, 3, 32, 32) and set(np.r_[y, yt]) == {0, 1}
    # frog (6) -> 0, deer (4) -> 1: brighter images carry label 0
    raw_bright = X.reshape(6, -1).mean(axis=1) > 0
    assert np.array_equal(raw_bright, y == 0)
    with pytest.raises(ValueError, match="not a CIFAR-10 class"):
        load_cifar_pair(tmp_path / "c", ("deer", "unicorn"))
    del rng


def test_polymer_embeddings_from_csv(tmp_path):
    from entropyeng.tasks import load_embeddings

    rows = np.c_[np.arange(20.0)[:, None] * np.ones((20, 3)), np.linspace(1, 5, 20)]
    np.savetxt(tmp_path / "e.csv", rows, delimiter=",", header="e0,e1,e2,Egb", comments="")
    (X, y), (Xt, yt) = load_embeddings(tmp_path / "e.csv")
    assert X.shape == (16, 3) and Xt.shape == (4, 3) and y.shape == (16, 1)
    np.testing.assert_allclose(y.mean(), 0, atol=1e-12)
    # the target follows its row
    np.testing.assert_allclose(np.r_[X[:, 0], Xt[:, 0]].argsort(), np.r_[y[:, 0], yt[:, 0]].argsort())


def test_paper_boxes_hold_every_normalisation_parameter_of_every_task_model():
    """The paper's box of a normalisation layer's gain or bias is +-2 (twice its natural scale 1), not
    2 / sqrt(width): every gain (1) and bias (0) of the ResNet starts inside it, and a WLMD sampler on
    the ResNet clamps none of them (its logits are the model's own)."""
    import warnings

    import torch

    from entropyeng import WLMD, Grid
    from entropyeng.tasks import (
        house_mlp,
        mnist_cnn,
        regression_mlp,
        regressor_head,
        resnet10_ln,
    )
    from entropyeng.wlmd import _NORMS, NORM_BOUND, paper_bounds

    models = [regression_mlp(30), house_mlp(293, 20), mnist_cnn(28, 2), regressor_head(768, 50),
              resnet10_ln(image_size=16)]
    for model in models:
        params = list(model.parameters())
        for p, box in zip(params, paper_bounds(model, params)):
            assert box > 0
        norm = [q for m in model.modules() if isinstance(m, _NORMS) for q in m.parameters(recurse=False)]
        for q, box in zip(params, paper_bounds(model, params)):
            if any(q is n for n in norm):
                assert box == NORM_BOUND and float(q.detach().abs().max()) <= box
    resnet = resnet10_ln(image_size=16).double()
    n_norm = sum(q.numel() for m in resnet.modules() if isinstance(m, _NORMS) for q in m.parameters(recurse=False))
    assert n_norm > 0.3 * sum(p.numel() for p in resnet.parameters())  # gains are a large share of the ResNet
    x = torch.randn(6, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    gains = [m.weight.detach().clone() for m in resnet.modules() if isinstance(m, torch.nn.LayerNorm)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the conv weights torch draws beyond 2/sqrt(out) are clamped
        WLMD(resnet, (x, y), (x, y), loss="ce", metric="accuracy", grid=Grid(-20, 20, 400, -20, 20, 400),
             sigma=0.2, cutoff=0.8, schedule=dict(f_max=1.0, t1=10, t2=100, t3=0), dt=1e-3, gamma=0.1)
    after = [m.weight.detach() for m in resnet.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert all(torch.equal(a, b) for a, b in zip(gains, after)) and all((g == 1).all() for g in after)


def test_the_digits_cnn_is_never_drawn_with_a_dead_layer():
    """With 2 channels PyTorch's default initialisation kills every unit of some layer in 6 seeds of
    10 (a constant output: nothing trains it); mnist_cnn draws such a network again."""
    import torch

    from entropyeng.tasks.digits import _every_layer_alive, mnist_cnn

    probe = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for seed in range(10):
        m = mnist_cnn(8, 2, seed=seed)
        assert sum(p.numel() for p in m.parameters()) == 502
        assert _every_layer_alive(m, probe)
    assert torch.equal(mnist_cnn(8, 2, seed=3)[0].weight, mnist_cnn(8, 2, seed=3)[0].weight)  # deterministic


def test_the_digits_stand_in_gets_a_baseline_that_trains():
    """On the 8 x 8 stand-in the paper's MNIST SGD setting stays at chance; the task's baseline is Adam
    there (unless set), and the paper's setting with an MNIST file."""
    from entropyeng.runs.config import load_config

    c = load_config("digits")
    assert (c["sgd"]["optimizer"], c["sgd"]["lr"], c["sgd"]["batch_size"]) == ("adam", 1e-3, 16)
    c = load_config("digits", sets=["sgd.lr=0.003"])
    assert c["sgd"]["lr"] == 0.003 and c["sgd"]["optimizer"] == "adam"
    c = load_config("digits", sets=["data.path=/somewhere/mnist.npz"])
    assert (c["sgd"]["optimizer"], c["sgd"]["lr"], c["sgd"]["batch_size"]) == ("sgd", 3e-3, 4)


def test_into_box_gives_the_samplers_start_without_a_warning_and_the_default_keeps_torchs_draw():
    """A factory's ``box="paper"`` clamps exactly what the sampler would (the same start, no warning);
    its default keeps PyTorch's initialisation, where the SGD baselines start."""
    import warnings

    import torch

    from entropyeng import WLMD
    from entropyeng.tasks import into_box, regression_mlp, spiral_regression

    train, test = spiral_regression(50, seed=0), spiral_regression(50, seed=1)
    drawn = regression_mlp(30)
    assert float(drawn[0].weight.detach().abs().max()) > 0.5  # PyTorch's U(+-1/sqrt(2)) draw, unchanged
    with pytest.warns(UserWarning, match=r"45 initial parameters lie outside the paper's box.*0\.weight: 30 beyond "
                                         r"\+-0\.365.*into_box"):
        clamped_by_sampler = WLMD(regression_mlp(30), train, test, loss="mse", steps=100)
    boxed = regression_mlp(30, box="paper")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = WLMD(boxed, train, test, loss="mse", steps=100)
    assert torch.equal(quiet.theta, clamped_by_sampler.theta)
    assert float(into_box(regression_mlp(30, seed=3), 0.1)[0].weight.detach().abs().max()) == 0.1
    with pytest.raises(ValueError, match="bound"):
        into_box(regression_mlp(30), "wide")
