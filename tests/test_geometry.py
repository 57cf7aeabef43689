"""Fisher-Rao geometry of SPD(d): metric, exponential map, eigenvalue clamp."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.linalg import expm, sqrtm

from smoothcert._geometry._fisher_rao import (
    clamp_eigenvalues,
    exp_whitened,
    fisher_rao_exp,
    fisher_rao_metric,
    fisher_rao_norm_whitened,
    sym_sqrt,
)


def random_spd(rng, n, d, spread=1.0):
    """``n`` random SPD matrices with eigenvalues in about ``[e^-spread, e^spread]``."""
    q, _ = np.linalg.qr(rng.standard_normal((n, d, d)))
    w = np.exp(spread * rng.uniform(-1, 1, size=(n, d)))
    return np.einsum("nij,nj,nkj->nik", q, w, q)


def random_symmetric(rng, n, d, scale=1.0):
    a = scale * rng.standard_normal((n, d, d))
    return 0.5 * (a + np.swapaxes(a, 1, 2))


def affine_invariant_inner(sigma, u, v):
    """``tr(Sigma^-1 U Sigma^-1 V)``, one matrix at a time (independent of geomstats)."""
    inv = np.linalg.inv(sigma)
    return np.einsum("nij,njk,nkl,nli->n", inv, u, inv, v)


def closed_form_exp(sigma, tangent):
    """``Sigma^(1/2) expm(Sigma^(-1/2) V Sigma^(-1/2)) Sigma^(1/2)``, with scipy only."""
    out = []
    for s, v in zip(sigma, tangent):
        root = np.real(sqrtm(s))
        inv_root = np.linalg.inv(root)
        out.append(root @ expm(inv_root @ v @ inv_root) @ root)
    return np.array(out)


def geomstats_spd(d):
    from geomstats.geometry.spd_matrices import SPDAffineMetric, SPDMatrices

    fisher_rao_metric(d)  # imports geomstats with the numpy backend, quietly
    space = SPDMatrices(d, equip=False)
    space.equip_with_metric(SPDAffineMetric)
    return space


@pytest.mark.parametrize("d", [2, 3, 5])
def test_fisher_rao_metric_is_half_the_affine_invariant_metric(d):
    rng = np.random.default_rng(d)
    sigma = random_spd(rng, 6, d)
    u, v = random_symmetric(rng, 6, d), random_symmetric(rng, 6, d)
    metric = fisher_rao_metric(d)
    fisher = np.asarray(metric.inner_product(u, v, sigma))
    assert_allclose(fisher, 0.5 * affine_invariant_inner(sigma, u, v), rtol=1e-10)
    affine = np.asarray(geomstats_spd(d).metric.inner_product(u, v, sigma))
    assert_allclose(fisher, 0.5 * affine, rtol=1e-10)
    # the metric is cached per dimension
    assert fisher_rao_metric(d) is metric


@pytest.mark.parametrize("d", [2, 4])
def test_fisher_rao_exp_matches_closed_form_and_geomstats(d):
    rng = np.random.default_rng(10 + d)
    sigma = random_spd(rng, 5, d, spread=1.5)
    tangent = random_symmetric(rng, 5, d, scale=0.7)
    out = fisher_rao_exp(sigma, tangent)
    assert_allclose(out, closed_form_exp(sigma, tangent), rtol=1e-9, atol=1e-12)
    space = geomstats_spd(d)
    assert_allclose(out, np.asarray(space.metric.exp(tangent, sigma)), rtol=1e-9, atol=1e-12)
    assert_allclose(out, np.swapaxes(out, 1, 2), atol=0)
    assert np.all(np.linalg.eigvalsh(out) > 0)


@pytest.mark.parametrize("d", [2, 3, 6])
def test_exp_whitened_is_sigma_half_expm_w_sigma_half(d):
    rng = np.random.default_rng(20 + d)
    sigma = random_spd(rng, 7, d, spread=1.5)
    w = random_symmetric(rng, 7, d, scale=0.8)
    out = exp_whitened(sigma, w)
    root = np.array([np.real(sqrtm(s)) for s in sigma])
    expected = np.array([r @ expm(x) @ r for r, x in zip(root, w)])
    assert_allclose(out, expected, rtol=1e-9, atol=1e-12)
    # a zero step is the identity, and a whitened multiple of I scales Sigma
    assert_allclose(exp_whitened(sigma, np.zeros_like(w)), sigma, rtol=1e-12, atol=1e-14)
    assert_allclose(exp_whitened(sigma, 0.3 * np.broadcast_to(np.eye(d), w.shape)),
                    np.exp(0.3) * sigma, rtol=1e-10)


def test_exp_whitened_does_not_rotate_the_ellipse():
    # A rotated, elongated Sigma and a step that only stretches its own long
    # axis: the eigenvectors must stay put (mixing bases would rotate them).
    theta = 0.6
    u = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    sigma = (u @ np.diag([4.0, 0.25]) @ u.T)[None]
    w = (u @ np.diag([0.5, 0.0]) @ u.T)[None]
    out = exp_whitened(sigma, w)[0]
    assert_allclose(out, u @ np.diag([4.0 * np.exp(0.5), 0.25]) @ u.T, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("d", [2, 3])
def test_whitened_norm_is_the_fisher_rao_length_of_the_step(d):
    rng = np.random.default_rng(30 + d)
    sigma = random_spd(rng, 5, d)
    w = random_symmetric(rng, 5, d, scale=0.5)
    root = sym_sqrt(sigma)
    tangent = root @ w @ root
    metric = fisher_rao_metric(d)
    norm_sq = np.asarray(metric.inner_product(tangent, tangent, sigma))
    assert_allclose(fisher_rao_norm_whitened(w), np.sqrt(norm_sq), rtol=1e-10)
    # the exponential map is a geodesic: the distance travelled is that length
    end = exp_whitened(sigma, w)
    assert_allclose(np.asarray(metric.dist(sigma, end)), fisher_rao_norm_whitened(w), rtol=1e-7)


def test_sym_sqrt_powers():
    rng = np.random.default_rng(3)
    sigma = random_spd(rng, 4, 3, spread=2.0)
    root = sym_sqrt(sigma)
    assert_allclose(root, np.swapaxes(root, 1, 2), atol=1e-12)
    assert_allclose(root @ root, sigma, rtol=1e-10, atol=1e-12)
    inv_root = sym_sqrt(sigma, -0.5)
    assert_allclose(inv_root @ sigma @ inv_root, np.broadcast_to(np.eye(3), sigma.shape), atol=1e-10)


def test_clamp_eigenvalues_per_row_bounds():
    rng = np.random.default_rng(4)
    sigma = random_spd(rng, 50, 4, spread=3.0)
    low = rng.uniform(0.1, 0.5, size=50)
    high = low * rng.uniform(2.0, 20.0, size=50)
    out = clamp_eigenvalues(sigma, low, high)
    w_out = np.linalg.eigvalsh(out)
    assert np.all(w_out >= low[:, None] * (1 - 1e-10))
    assert np.all(w_out <= high[:, None] * (1 + 1e-10))
    assert_allclose(out, np.swapaxes(out, 1, 2), atol=0)
    # eigenvalues inside the bounds are untouched, and so are the eigenvectors
    w_in, v_in = np.linalg.eigh(sigma)
    expected = np.einsum("nij,nj,nkj->nik", v_in, np.clip(w_in, low[:, None], high[:, None]), v_in)
    assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
    inside = clamp_eigenvalues(sigma, 1e-6, 1e6)
    assert_allclose(inside, sigma, rtol=1e-10, atol=1e-12)


def test_geomstats_import_leaves_logging_and_torch_alone():
    code = textwrap.dedent(
        """
        import logging
        try:
            import torch
        except ImportError:
            torch = None
        root = logging.getLogger()
        level, handlers = root.level, list(root.handlers)
        from smoothcert._geometry._fisher_rao import fisher_rao_metric
        fisher_rao_metric(3)
        assert root.level == level, (root.level, level)
        assert root.handlers == handlers, root.handlers
        if torch is not None:
            assert torch.get_default_dtype() == torch.float32, torch.get_default_dtype()
        import os
        import numpy as np
        assert os.environ["GEOMSTATS_BACKEND"] == "numpy"
        out = fisher_rao_metric(3).exp(np.zeros((3, 3)), np.eye(3))
        assert type(out) is np.ndarray, type(out)
        print("ok")
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "GEOMSTATS_BACKEND"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


def test_restore_trapz_aliases_only_a_missing_name():
    import types

    from smoothcert._geometry._numpy_compat import restore_trapz

    def trapezoid(y):
        return y

    new = types.SimpleNamespace(trapezoid=trapezoid)  # numpy >= 2.4
    assert restore_trapz(new) and new.trapz is trapezoid
    old = types.SimpleNamespace(trapezoid=trapezoid, trapz=len)  # numpy < 2.4
    assert not restore_trapz(old) and old.trapz is len
    neither = types.SimpleNamespace()
    assert not restore_trapz(neither) and not hasattr(neither, "trapz")


def test_geomstats_imports_on_a_numpy_without_trapz():
    """numpy 2.4 removed ``numpy.trapz``, which geomstats 2.8 imports."""
    code = textwrap.dedent(
        """
        import numpy as np
        from numpy.testing import assert_allclose
        from smoothcert._geometry._fisher_rao import fisher_rao_exp, fisher_rao_metric
        if hasattr(np, "trapz"):  # as on numpy >= 2.4
            del np.trapz
            np.__all__ = [name for name in np.__all__ if name != "trapz"]
        fisher_rao_metric(2)
        assert np.trapz is np.trapezoid
        sigma = np.eye(2)[None]
        assert_allclose(fisher_rao_exp(sigma, 0.1 * np.eye(2)[None]), np.exp(0.1) * sigma)
        print("ok")
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "GEOMSTATS_BACKEND"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")
