"""Search stages: the mathematics of the covariance search, one class per covariance form.

A covariance search (:mod:`._searches`) is a chain of stages, each the same
projected adaptive-moment ascent of ``J = gap * M`` on one covariance form. The
forms (:mod:`smoothcert._geometry._forms`) keep storage, spectrum, sampling and
affine images; a stage owns what the ascent does on its form:

* **parameters** -- what the ascent moves (:meth:`~SearchStage.from_parameters`)
  and how it starts at the previous stage's optimum
  (:meth:`~SearchStage.parameters_from`);
* **bounds** -- the floor and cap of the noise scales in the parameters' units
  (:meth:`~SearchStage.bounds`), and the projected **step** that keeps every
  eigenvalue within them and the geometric mean of the eigenvalues under the
  volume cap (:meth:`~SearchStage.step`);
* the **tangent** -- its shape, its Fisher-Rao norm, the projections of the
  Monte-Carlo moments of the gradient estimators (score-function and
  pathwise) and of the shape term's gradient onto it;
* the **adaptive moments** -- per coordinate, or one second moment per row
  (:meth:`~SearchStage.direction`).

The stages are :class:`IsotropicStage`, :class:`DiagonalStage`,
:class:`FullStage` and :class:`LowRankStage`. A new covariance form is one
geometry class plus one subclass of :class:`SearchStage`, which registers
itself under the form's ``kind``.
"""

import numpy as np

from .._geometry._fisher_rao import cap_log_mean, clamp_eigenvalues, exp_whitened, fisher_rao_norm_whitened
from .._geometry._forms import (
    DiagonalCovariances,
    FullCovariances,
    IsotropicCovariances,
    LowRankCovariances,
    lowrank_svd,
)
from .._geometry._linalg import spectral, symmetrize
from ._objectives import _shape_factor, _shape_gradient, _soft_min_scale

__all__ = [
    "AdamMoments",
    "SearchStage",
    "IsotropicStage",
    "DiagonalStage",
    "FullStage",
    "LowRankStage",
    "LowRankTangent",
    "STAGES",
    "LOWRANK_RANK",
]

#: kind -> stage class, filled by subclassing :class:`SearchStage`.
STAGES = {}
#: Adam's moment decay rates and its guard against division by zero.
_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-12
#: Number of directions ``k`` along which the low-rank stage shrinks the noise.
LOWRANK_RANK = 2


class AdamMoments:
    """Adam's bias-corrected moments of one stage's ascent.

    The second moment has the shape the stage gives it: one per coordinate
    of the tangent, or one per row (then broadcast over the row's tangent).
    """

    def __init__(self):
        self.m = self.v = None
        self.t = 0

    def direction(self, grad, second):
        """The normalized direction ``m_hat / (sqrt(v_hat) + eps)`` after one more gradient."""
        self.t += 1
        if self.m is None:
            self.m, self.v = np.zeros_like(grad), np.zeros_like(second)
        self.m = _BETA1 * self.m + (1.0 - _BETA1) * grad
        self.v = _BETA2 * self.v + (1.0 - _BETA2) * second
        m_hat = self.m / (1.0 - _BETA1**self.t)
        v_hat = self.v / (1.0 - _BETA2**self.t)
        root = np.sqrt(v_hat)
        root = root.reshape(root.shape + (1,) * (grad.ndim - root.ndim))
        return m_hat / (root + _EPS)


class SearchStage:
    """One stage of a covariance search: the ascent's mathematics on one form (abstract base).

    Stages hold no state; a search lists one instance per stage. Tangent
    vectors are whitened (``W = L^-1 T L^-T`` for the noise factor ``L``).
    """

    #: Name of the covariance form (key of :data:`STAGES` and of the forms' registry).
    kind = None
    #: The geometry class of the form.
    form = None
    #: What score-function estimates read under ``votes="auto"``: soft scores
    #: (smooth where every vote agrees: the scale and per-axis stages), or
    #: hard votes (whose failures locate the boundary sharply: the stages
    #: that turn the noise).
    auto_votes = "soft"
    #: Weight of the inscribed-ball term of the ``"volume"`` objective under
    #: ``kappa="auto"`` (ANCER's 2).
    auto_kappa = 2.0
    #: Under ``floor="isotropic"``, the smallest noise scale of the stage in
    #: units of the row's isotropic optimum (1: the certified ellipsoid
    #: contains the isotropic ball).
    floor_fraction = 1.0
    #: Whether a row leaves the ascent once its objective stops rising
    #: (``CONVERGENCE_WINDOW`` of :mod:`._searches`) instead of making every
    #: iteration.
    stops_when_converged = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.kind is not None:
            STAGES[cls.kind] = cls

    def __repr__(self):
        return f"{type(self).__name__}()"

    # ---------------------------------------------------------- parameters
    def from_parameters(self, theta, n_features):
        """The covariances whose search parameters are ``theta`` (log-variances by default)."""
        return self.form(np.exp(theta), n_features)

    def parameters_from(self, previous, theta, n_features):
        """Search parameters of this stage at the optimum of the previous one.

        ``previous`` is the previous stage and ``theta`` its parameters;
        ``None`` and log-variances (n,) start a first stage.
        """
        raise NotImplementedError

    def bounds(self, floor_log, cap_log):
        """Per-row bounds of the parameters from log-variance floor and cap, ``(n,)`` each."""
        return floor_log, cap_log

    # -------------------------------------------------------------- tangent
    def tangent_shape(self, n_features):
        """Shape of one row's whitened tangent vector (the search's step)."""
        raise NotImplementedError

    def norm(self, tangent, n_features):
        """Fisher-Rao norm of each row's whitened tangent vector, ``(n,)``."""
        raise NotImplementedError

    def step(self, theta, direction, low, high, volume=None):
        """Parameters after a step ``direction`` (whitened tangent), kept within bounds.

        Every eigenvalue stays in ``[low, high]`` (per row, in the units of
        :meth:`bounds`) and, with ``volume`` (per row, log of the largest
        ``det(Sigma)^(1/d)``), the geometric mean of the eigenvalues at most
        ``exp(volume)``.
        """
        raise NotImplementedError

    # -------------------------------------------------- gradient estimates
    def score_moment(self, centred, z):
        """Projection of ``mean[(h - mean h)(z z^T - I)]`` on the tangent.

        ``centred`` (r, m) are the centred objective values and ``z`` (r, m, d)
        the whitened draws (the score-function natural gradient).
        """
        raise NotImplementedError

    def pathwise_moment(self, grad_z, z):
        """Projection of ``sym(mean[grad_z h  z^T])`` on the tangent (pathwise gradient)."""
        raise NotImplementedError

    def estimate(self, sampler, covariances, tag, weights, path):
        """One Monte-Carlo pass: smoothed scores and the natural gradient of ``E[h]`` on the tangent.

        ``sampler`` runs the pass (``statistics``) on the search's rows,
        ``tag`` is its stream tag, ``weights`` define ``h``; ``path`` (n, d)
        is the running sum of the input gradients, which only stages that
        follow the boundary normal read and update.

        Returns
        -------
        psi : ndarray of shape (n, n_classes)
        moment : tangent
        path : ndarray of shape (n, d)
        """
        stats = sampler.statistics(covariances, tag, weights, projection=self)
        return stats["psi"], stats["moment"], path

    # ---------------------------------------------------------- shape term
    def spectral_tangent(self, covariances, a, c, scale_derivative):
        """A whitened tangent ``a I + U diag(c) U^T`` projected on this stage's tangent.

        ``U`` diagonalizes the covariance; this is the Fisher-Rao gradient of
        a spectral function whose derivatives along ``log s_i`` (``s_i`` the
        noise scales) are ``a + c_i``. ``scale_derivative`` (n,) is the exact
        derivative along the log of a common scale, for stages whose tangent
        holds only that direction.
        """
        raise NotImplementedError

    def shape_tangent(self, covariances, objective, kappa, basis=None):
        """Whitened natural gradient of the shape term ``M``, projected on the tangent.

        The gradient of the smooth surrogate of ``M``
        (:func:`~._objectives._shape_gradient`) through :meth:`spectral_tangent`;
        ``basis`` is the step's basis for stages whose tangent has one.
        """
        eigvals = covariances.eigenvalues()
        a, c = _shape_gradient(eigvals, objective, kappa)
        return self.spectral_tangent(covariances, a, c, _shape_factor(eigvals, objective, kappa))

    def gradient(self, moment, covariances, gap, shape, objective, kappa):
        """The natural gradient of ``J = gap * M``: ``M grad(gap) + gap grad(M)``.

        ``moment`` is the gap's gradient from :meth:`estimate`, ``gap`` and
        ``shape`` (n,) the values of both factors.
        """
        expand = (slice(None),) + (None,) * (moment.ndim - 1)
        return shape[expand] * moment + gap[expand] * self.shape_tangent(covariances, objective, kappa)

    # ------------------------------------------------------ adaptive moments
    def second_moment(self, tangent):
        """What Adam's second moment averages: the squared coordinates (per coordinate)."""
        return np.square(tangent)

    def direction(self, moments, tangent, learning_rate):
        """The ascent's step from the gradient ``tangent``: ``2 learning_rate`` times Adam's direction.

        ``moments`` is the stage's :class:`AdamMoments`; the factor 2 makes
        ``learning_rate`` a step in the log of the noise scales.
        """
        return 2.0 * learning_rate * moments.direction(tangent, self.second_moment(tangent))


class IsotropicStage(SearchStage):
    """``sigma^2 I``: one log-variance per row, moved with its own moments.

    Examples
    --------
    >>> from smoothcert._search._stages import IsotropicStage
    >>> IsotropicStage().tangent_shape(784)
    ()
    """

    kind = "isotropic"
    form = IsotropicCovariances
    # One scale per row: it climbs to its optimum within 10 to 25 iterations
    # on every benchmark problem (MNIST: 97 % of the final objective by
    # iteration 24 for all 20 digits) and then only wanders; the later stages
    # keep rising to their last iteration.
    stops_when_converged = True

    def parameters_from(self, previous, theta, n_features):
        if previous is not None:
            raise ValueError("the isotropic stage starts a chain of stages")
        return theta

    def tangent_shape(self, n_features):
        return ()

    def norm(self, tangent, n_features):
        return np.sqrt(0.5 * n_features) * np.abs(tangent)

    def step(self, theta, direction, low, high, volume=None):
        if volume is not None:
            high = np.minimum(high, volume)
        return np.clip(theta + direction, low, high)

    def spectral_tangent(self, covariances, a, c, scale_derivative):
        # M(sigma^2 I) is homogeneous of degree 1 in sigma: its natural
        # gradient along log sigma^2 is M / d (the metric is d / 2 there).
        return scale_derivative / covariances.n_features

    def score_moment(self, centred, z):
        m, d = z.shape[1], z.shape[2]
        return np.einsum("rm,rm->r", centred, np.square(z).sum(axis=2) - d) / (m * d)

    def pathwise_moment(self, grad_z, z):
        m, d = z.shape[1], z.shape[2]
        return np.einsum("rmd,rmd->r", grad_z, z) / (m * d)


class DiagonalStage(SearchStage):
    """``diag(s_i^2)``: one log-variance per feature and row, each with its own moments.

    Examples
    --------
    >>> from smoothcert._search._stages import DiagonalStage
    >>> DiagonalStage().tangent_shape(3)
    (3,)
    """

    kind = "diagonal"
    form = DiagonalCovariances

    def parameters_from(self, previous, theta, n_features):
        if not isinstance(previous, IsotropicStage):
            raise ValueError("the diagonal stage starts from the isotropic one")
        return np.repeat(theta[:, None], n_features, axis=1)

    def tangent_shape(self, n_features):
        return (n_features,)

    def norm(self, tangent, n_features):
        return np.sqrt(0.5 * np.square(tangent).sum(axis=1))

    def step(self, theta, direction, low, high, volume=None):
        return cap_log_mean(theta + direction, low, high, volume)

    def spectral_tangent(self, covariances, a, c, scale_derivative):
        return a[:, None] + c

    def score_moment(self, centred, z):
        return np.einsum("rm,rmd->rd", centred, np.square(z) - 1.0) / z.shape[1]

    def pathwise_moment(self, grad_z, z):
        return np.einsum("rmd,rmd->rd", grad_z, z) / z.shape[1]


class FullStage(SearchStage):
    """SPD matrices moved by the Fisher-Rao exponential map, one second moment per row.

    The parameters are the matrices themselves; the step is
    ``Sigma^(1/2) expm(W) Sigma^(1/2)`` with every eigenvalue clamped into the
    bounds. Adam's second moment is the mean square of the whole whitened
    gradient, so the step does not depend on the basis of the inputs.

    Examples
    --------
    >>> from smoothcert._search._stages import FullStage
    >>> FullStage().tangent_shape(3)
    (3, 3)
    """

    kind = "full"
    form = FullCovariances
    auto_votes = "hard"
    # Turning an ellipsoid to follow a curved boundary thins the noise across
    # it below the isotropic optimum and lengthens it along the boundary; a
    # floor at the isotropic optimum, or a ball term as heavy as ANCER's,
    # keeps it round. Measured (benchmarks page): floor 1 -> 0.7 and kappa
    # 2 -> 1 raise the full stage's volume on every benchmark problem and
    # turn its smallest axis to the normal of an oblique boundary; a floor of
    # 0.5 loses 7 nats at d = 64, kappa 0.5 turns less there.
    auto_kappa = 1.0
    floor_fraction = 0.7

    def from_parameters(self, theta, n_features):
        return FullCovariances(theta, n_features)

    def parameters_from(self, previous, theta, n_features):
        if previous is None:
            raise ValueError("the full stage starts from a previous stage")
        return previous.from_parameters(theta, n_features).matrices()

    def bounds(self, floor_log, cap_log):
        return np.exp(floor_log), np.exp(cap_log)

    def tangent_shape(self, n_features):
        return (n_features, n_features)

    def norm(self, tangent, n_features):
        return fisher_rao_norm_whitened(tangent)

    def step(self, theta, direction, low, high, volume=None):
        # No useful step changes a variance by more than the whole allowed
        # range (the clamp undoes the excess): cap the spectral norm of the
        # whitened step there, so that expm cannot overflow whatever the
        # learning rate. Ordinary steps are far below the cap.
        limit = np.log(np.asarray(high) / np.asarray(low)) + 1.0
        largest = np.abs(np.linalg.eigvalsh(direction)).max(axis=-1)
        shrink = np.where(largest > limit, limit / np.where(largest > limit, largest, 1.0), 1.0)
        moved = exp_whitened(theta, direction * shrink[:, None, None])
        return clamp_eigenvalues(moved, low, high, volume)

    def spectral_tangent(self, covariances, a, c, scale_derivative):
        return a[:, None, None] * np.eye(covariances.n_features) + spectral(covariances.eigenvectors, c)

    def score_moment(self, centred, z):
        return np.swapaxes(z * centred[:, :, None], 1, 2) @ z / z.shape[1]

    def pathwise_moment(self, grad_z, z):
        g = np.swapaxes(grad_z, 1, 2) @ z / z.shape[1]
        return symmetrize(g)

    def second_moment(self, tangent):
        """One second moment per row: the mean square of the whitened tangent per feature, ``|W|_F^2 / d``."""
        return np.einsum("nij,nij->n", tangent, tangent) / tangent.shape[-1]


class LowRankTangent:
    """A whitened tangent of the low-rank stage: ``diag(g) + B C B^T``.

    ``g`` (n, d) moves the log-variances ``log D``; ``C`` (n, m, m) is a
    symmetric block on the orthonormal basis ``B`` (n, d, m) of the
    directions the search follows (the form's current directions and the
    estimated boundary normal). Tangents of one step share their basis, so
    they add and scale per row.
    """

    def __init__(self, diag, basis, block):
        self.diag, self.basis, self.block = diag, basis, block

    def scaled(self, factor):
        factor = np.asarray(factor, dtype=np.float64)
        return LowRankTangent(factor[:, None] * self.diag, self.basis, factor[:, None, None] * self.block)

    def __add__(self, other):
        if other.basis is not self.basis:
            raise ValueError("low-rank tangents of different bases cannot be added")
        return LowRankTangent(self.diag + other.diag, self.basis, self.block + other.block)

    def norm(self):
        """Fisher-Rao norm ``sqrt(tr(T^2) / 2)`` of each row, the two parts taken as orthogonal."""
        return np.sqrt(0.5 * (np.square(self.diag).sum(axis=1) + np.square(self.block).sum(axis=(1, 2))))


class LowRankStage(SearchStage):
    """``(D^-1 + V V^T)^-1``: the diagonal ``D`` and ``k`` shrink directions ``V``.

    The parameters are the form's values with ``log D`` in place of ``D``,
    shape ``(n, d, k + 1)``. A tangent (:class:`LowRankTangent`) moves
    ``log D`` (Adam per feature) and a block on the span of the form's
    directions and of the running input gradient (the boundary normal),
    normalized per row (its basis moves with the search, so it has no fixed
    coordinates for moments).

    Bounds: ``Sigma <= D``, so clipping ``D`` at the cap bounds every
    eigenvalue; ``lambda_min(Sigma) >= floor`` holds exactly when
    ``lambda_max(V^T diag(1/floor - 1/D)^-1 V) <= 1`` (a ``k x k``
    eigenvalue), which fixes how far ``V`` may go; and
    ``log det Sigma <= sum log D`` bounds the volume (conservatively: the
    shrink directions are not credited).

    Examples
    --------
    >>> from smoothcert._search._stages import LowRankStage
    >>> LowRankStage().tangent_shape(784)
    (784, 4)
    """

    kind = "lowrank"
    form = LowRankCovariances
    auto_votes = "hard"
    #: Number of directions ``k`` along which the noise is shrunk.
    rank = LOWRANK_RANK

    # ---------------------------------------------------------- parameters
    def from_parameters(self, theta, n_features):
        values = theta.copy()
        values[:, :, 0] = np.exp(theta[:, :, 0])
        return LowRankCovariances._wrap(values, n_features)

    def parameters_from(self, previous, theta, n_features):
        if previous is None:
            raise ValueError("the lowrank stage starts from a previous stage")
        if previous.kind == self.kind:
            return theta
        if previous.kind == "isotropic":
            log_d = np.repeat(theta[:, None], n_features, axis=1)
        elif previous.kind == "diagonal":
            log_d = theta
        else:
            raise ValueError(f"the lowrank stage cannot start from the {previous.kind} stage")
        out = np.zeros((len(theta), n_features, self.rank + 1))
        out[:, :, 0] = log_d
        return out

    # -------------------------------------------------------------- tangent
    def tangent_shape(self, n_features):
        return (n_features, self.rank + 2)

    def norm(self, tangent, n_features):
        return tangent.norm()

    def step(self, theta, direction, low, high, volume=None):
        """Move ``log D`` by ``g`` and the low-rank part by ``M^(1/2) exp(B C B^T) M^(1/2)``.

        The block step acts on the whitened frame of ``L``: with ``M`` the
        middle factor of ``Sigma = D^(1/2) M D^(1/2)``, the step maps ``M`` to
        ``M^(1/2) expm(B C B^T) M^(1/2)``, whose inverse is the identity plus a
        symmetric matrix on ``span(B)``; its positive part (shrinking the noise)
        is kept, at most ``k`` directions, as the new ``U = D^(1/2) V``
        (directions that would grow the noise beyond ``D`` are left to ``D``).
        Then ``log D`` moves by ``g``, ``D`` is clipped into ``[low, high]``
        (log scale) with the mean of ``log D`` at most ``volume``, and ``V``
        shrunk until every eigenvalue is at least ``exp(low)`` (see the class
        docstring).
        """
        n, d, k1 = theta.shape
        k = k1 - 1
        log_d, V = theta[:, :, 0], theta[:, :, 1:]
        D = np.exp(log_d)
        P, s = lowrank_svd(D, V)
        a = 1.0 / np.sqrt(1.0 + s**2)
        B, C = direction.basis, direction.block
        m = B.shape[2]
        # M^(-1/2) B expressed on the joint basis [P, B]: the step's new
        # M'^-1 = M^(-1/2) expm(-B C B^T) M^(-1/2) = M^-1 + M^(-1/2) B (expm(-C) - I) B^T M^(-1/2)
        w, R = np.linalg.eigh(symmetrize(-C))
        # no useful step changes a variance by more than the whole allowed
        # range: cap the block's spectrum there (expm cannot overflow)
        limit = (np.asarray(high) - np.asarray(low) + 1.0)[:, None]
        w = np.clip(w, -limit, limit)
        E = (R * np.expm1(w)[:, None, :]) @ np.swapaxes(R, 1, 2)  # expm(-C) - I, (n, m, m)
        PtB = np.swapaxes(P, 1, 2) @ B  # (n, k, m)
        inv_a = 1.0 / a
        Minvh_B = B + P @ ((inv_a - 1.0)[:, :, None] * PtB)  # M^(-1/2) B, (n, d, m)
        # M^-1 - I = U U^T = P diag(s^2) P^T; the full symmetric update on span[P, M^(-1/2) B]
        basis = np.concatenate([P, Minvh_B], axis=2)
        q, rr = np.linalg.qr(basis)
        top = np.zeros((n, k + m, k + m))
        top[:, :k, :k] = s[:, :, None] ** 2 * np.eye(k)[None]
        top[:, k:, k:] = E
        small = symmetrize(rr @ top @ np.swapaxes(rr, 1, 2))
        ev, evec = np.linalg.eigh(small)
        # keep the k largest positive parts (directions where the precision grows)
        ev = np.clip(ev, 0.0, None)[:, ::-1][:, :k]
        evec = evec[:, :, ::-1][:, :, :k]
        U_new = (q @ evec) * np.sqrt(ev)[:, None, :]
        # the mean of log D is capped at ``volume``: log det Sigma = sum log D
        # + log det M <= sum log D, so the geometric mean of the eigenvalues
        # stays within the cap (the shrink directions are not credited)
        log_d_new = cap_log_mean(log_d + direction.diag, low, high, volume)
        D_new = np.exp(log_d_new)
        # U = D^(1/2) V is kept while D moves (M fixed: a common factor of D
        # scales Sigma exactly)
        V_new = U_new / np.sqrt(D_new)[:, :, None]
        V_new = self._respect_floor(D_new, V_new, np.exp(low))
        out = np.empty_like(theta)
        out[:, :, 0] = log_d_new
        out[:, :, 1:] = V_new
        return out

    @staticmethod
    def _respect_floor(D, V, floor):
        """Shrink ``V`` (by one factor per row) so that every eigenvalue of ``Sigma`` is at least ``floor``.

        ``lambda_min(Sigma) >= f`` is ``D^-1 + V V^T <= I / f``, that is
        ``V V^T <= E = diag(1/f - 1/D_i)`` (``D >= f``): with ``gamma V`` in
        place of ``V``, ``gamma^2 lambda_max(V^T E^-1 V) <= 1``, a ``k x k``
        eigenvalue. Components of ``V`` on axes already at the floor
        (``E_i = 0``) are removed: no direction through them can shrink.
        """
        floor = np.asarray(floor, dtype=np.float64)[:, None]
        room = 1.0 / floor - 1.0 / D
        at_floor = room <= 1e-12 / floor
        V = np.where(at_floor[:, :, None], 0.0, V)
        inv = np.where(at_floor, 0.0, 1.0 / np.where(at_floor, 1.0, room))
        K = np.swapaxes(V, 1, 2) @ (inv[:, :, None] * V)
        top = np.linalg.eigvalsh(symmetrize(K))[:, -1]
        # a hair inside, so that rounding cannot push an eigenvalue below the floor
        shrink = np.where(top > 1.0, (1.0 - 1e-9) / np.sqrt(np.where(top > 1.0, top, 1.0)), 1.0)
        return V * shrink[:, None, None]

    # -------------------------------------------------- gradient estimates
    @staticmethod
    def basis(covariances, u):
        """Orthonormal basis ``[u, P]`` (n, d, k + 1) of a step, in the whitened frame.

        ``u`` (n, d): a unit whitened direction (the estimated boundary
        normal); ``P``: the form's current shrink directions. A column (nearly)
        spanned by the previous ones, or a zero ``u``, is zeroed: a step along
        it would only add noise.
        """
        P, _ = covariances.svd()
        q, r = np.linalg.qr(np.concatenate([u[:, :, None], P], axis=2))
        live = np.abs(np.diagonal(r, axis1=1, axis2=2)) > 1e-3
        return q * live[:, None, :]

    def estimate(self, sampler, covariances, tag, weights, path):
        """The low-rank tangent of ``E[h]``: per-feature diagonal moments and a block on ``[u, P]``.

        ``u`` is the running sum of the whitened first moments (the gradient
        of the smoothed score with respect to the input), in input
        coordinates: an estimate of the boundary normal; ``P`` the form's
        current shrink directions (:meth:`basis`). This pass's first moment
        is added to ``path``.
        """
        u_x = path / np.maximum(np.linalg.norm(path, axis=1, keepdims=True), _EPS)
        u = covariances.factor_transpose(u_x)
        B = self.basis(covariances, u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), _EPS))
        stats = sampler.statistics(covariances, tag, weights, basis=B, diagonal=True)
        path = path + covariances.inverse_factor_transpose(stats["v"])
        block = np.swapaxes(B, 1, 2) @ stats["WB"]
        block = 0.5 * (block + np.swapaxes(block, 1, 2))
        diag = stats["diag"] - ((B @ block) * B).sum(axis=2)
        return stats["psi"], LowRankTangent(diag, B, block), path

    # ---------------------------------------------------------- shape term
    def smallest_axis(self, covariances):
        """Whitened unit direction ``y = L^T x / |L^T x|`` of the smallest eigenvector ``x``, (n, d).

        ``x`` is the top eigenvector of the precision ``D^-1 + V V^T``: with
        ``mu`` its eigenvalue above ``max D^-1``, ``x = (mu - D^-1)^-1 V c``
        for the eigenvector ``c`` of ``V^T (mu - D^-1)^-1 V`` at eigenvalue 1;
        else (no direction shrunk below the diagonal's smallest) the axis of
        the smallest ``D_i``.
        """
        values = covariances.values
        D, V = values[:, :, 0], values[:, :, 1:]
        inv_d = 1.0 / D
        mu = 1.0 / covariances.min_eigenvalue()
        top = inv_d.max(axis=1)
        spiked = mu > top * (1.0 + 1e-9)
        gap = np.where(spiked[:, None], mu[:, None] - inv_d, 1.0)
        K = np.swapaxes(V, 1, 2) @ (V / gap[:, :, None])
        w, c = np.linalg.eigh(symmetrize(K))
        c = c[:, :, -1]
        x = np.einsum("ndk,nk->nd", V, c) / gap
        axis = np.zeros_like(D)
        axis[np.arange(len(D)), np.argmin(D, axis=1)] = 1.0
        x = np.where(spiked[:, None], x, axis)
        y = covariances.factor_transpose(x)
        return y / np.linalg.norm(y, axis=1, keepdims=True)

    def shape_tangent(self, covariances, objective, kappa, basis=None):
        """Whitened gradient of the shape term on the step's ``basis`` (a :class:`LowRankTangent`).

        The volume term ``det^(1/(2d))`` has the exact gradient
        ``det^(1/(2d)) / d * I``: a common move of ``log D``. The ball term
        ``kappa sqrt(lambda_min)`` follows a smooth minimum of the noise scales
        (:func:`~._objectives._soft_min_scale`, as the other stages do) over a
        pseudo-spectrum: the variances ``D_i``, whose weights move ``log D_i``,
        and, when a direction is shrunk below them, the smallest eigenvalue,
        whose weight goes on ``y y^T`` (``y`` from :meth:`smallest_axis`; its
        part in ``span(basis)`` on the block, the rest on ``log D``).
        """
        d = covariances.n_features
        D = covariances.values[:, :, 0]
        lam = covariances.min_eigenvalue()
        spiked = lam < D.min(axis=1) * (1.0 - 1e-9)
        spectrum = np.concatenate([D, np.where(spiked, lam, np.inf)[:, None]], axis=1)
        m, omega = _soft_min_scale(spectrum)
        coef = (1.0 if objective == "ball" else kappa) * m
        diag = coef[:, None] * omega[:, :d]
        if objective != "ball":
            diag += (np.exp(covariances.logdet() / (2.0 * d)) / d)[:, None]
        y = self.smallest_axis(covariances)
        By = np.einsum("ndm,nd->nm", basis, y)
        rest = y - np.einsum("ndm,nm->nd", basis, By)
        w_spike = coef * omega[:, d]
        diag += w_spike[:, None] * np.square(rest)
        block = w_spike[:, None, None] * By[:, :, None] * By[:, None, :]
        return LowRankTangent(diag, basis, block)

    def gradient(self, moment, covariances, gap, shape, objective, kappa):
        return moment.scaled(shape) + self.shape_tangent(covariances, objective, kappa, moment.basis).scaled(gap)

    # ------------------------------------------------------ adaptive moments
    def direction(self, moments, tangent, learning_rate):
        """Adam on the diagonal (fixed coordinates); the block, on a basis that
        moves with the search, only normalized (per row, by its root mean square)."""
        block = tangent.block
        rms = np.sqrt(np.square(block).mean(axis=(1, 2)))
        return LowRankTangent(2.0 * learning_rate * moments.direction(tangent.diag, self.second_moment(tangent.diag)),
                              tangent.basis, 2.0 * learning_rate * block / np.maximum(rms, _EPS)[:, None, None])
