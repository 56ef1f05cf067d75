"""The top eigenvalue of a symmetric operator by Lanczos, for one model or every replica of a pack.

Why Lanczos and not power iteration: after M products, power iteration's error
shrinks like (lambda_2 / lambda_1)^(2M), Lanczos' like a Chebyshev polynomial
of the eigengap, roughly exp(-4 M sqrt(gap)); and Lanczos gives the largest
*algebraic* eigenvalue directly, where power iteration finds the largest in
magnitude and needs a second, shifted run when a negative eigenvalue dominates
(early in training, or in a diverging run). On sensor_lstm's 18-replica pack
(docs/sharpness.md), from a random start, 10 products left power iteration
more than 25% off on 6 of the replicas (up to 100%) and Lanczos within 4.3% on
all of them (under 0.1% on 15 of 18); 15 products were exact to 4 digits.

Each step multiplies the newest basis vector by the operator, orthogonalises
the result against the whole basis (twice, classical Gram-Schmidt: float32 and
a finite-difference operator lose orthogonality fast, and an unorthogonalised
basis grows spurious copies of converged eigenvalues), and appends it. The
small tridiagonal matrix T of the step coefficients is diagonalised on the host
(numpy, every replica's at once); its top eigenpair gives the estimate (the
Ritz value) and, through the basis, the vector the next estimate starts from.
The basis is at most ``RESTART`` vectors long: a longer run restarts from its
current Ritz vector, so memory stays bounded for any ``iterations``.

``batched``: the vectors carry a leading replica axis and the operator is block
diagonal (a pack's Hessian: the packed loss is a sum of independent replicas'
losses), so every reduction is per replica and every replica gets its own T.

The stopping rule is a bound, not a heuristic: after j steps, ``A y - theta y``
for the Ritz pair (theta, y) has norm ``|beta_j s_j|`` (s_j the last component
of T's eigenvector), and a symmetric A has an eigenvalue within that distance
of theta. ``tolerance`` stops once every replica's bound is below that
fraction of its estimate; with ``compact`` each replica stops at its own bound
and the products go on over the replicas still converging only (warm-started
estimates of a pack settle after a median 4-6 products, the slowest after 10+:
docs/sharpness.md).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

Vectors = list[tf.Tensor]
# ``v -> A v``; with ``top_eigenvalue(compact=True)`` also ``(v, rows) -> A v`` on those replicas.
MatVec = Callable[..., Vectors]

# Longest basis kept: a run of more steps restarts from its Ritz vector (explicit restart).
RESTART = 30
# A step coefficient beta this small against T's scale means the Krylov space is invariant
# (the operator's rank, or a least-squares problem with fewer weights than steps): that
# replica's basis is complete and its estimate exact.
_BREAKDOWN = 1e-6


class _Tridiagonal:
    """Every replica's Lanczos coefficients, and the top eigenpair of each one's T."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.alphas: list[np.ndarray] = []
        self.betas: list[np.ndarray] = []  # betas[i] couples steps i and i + 1
        self.size = np.zeros(k, np.int64)  # per replica: steps taken before its basis was complete
        self.done = np.zeros(k, bool)

    def add(self, alpha: np.ndarray, beta: np.ndarray) -> None:
        live = ~self.done
        self.alphas.append(np.where(live, alpha, 0.0).astype(np.float64))
        self.size += live
        scale_ = np.maximum.reduce([np.abs(a) for a in self.alphas] + [np.abs(b) for b in self.betas])
        broke = live & ~(beta > _BREAKDOWN * np.maximum(scale_, np.finfo(np.float32).tiny))
        self.done |= broke | ~np.isfinite(beta)
        self.betas.append(np.where(self.done, 0.0, beta).astype(np.float64))

    def freeze(self, rows: np.ndarray) -> None:
        """End the estimates of ``rows`` (a mask) at the current step: later steps are padding."""
        self.done |= rows
        self.betas[-1] = np.where(rows, 0.0, self.betas[-1])

    def top(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per replica: the top Ritz value, T's eigenvector for it ``[K, j]``, and its residual bound."""
        j = len(self.alphas)
        t = np.zeros((self.k, j, j))
        a = np.stack(self.alphas, axis=1)
        b = np.stack(self.betas[: j - 1], axis=1) if j > 1 else np.zeros((self.k, 0))
        idx = np.arange(j)
        t[:, idx, idx] = a
        t[:, idx[:-1], idx[1:]] = b
        t[:, idx[1:], idx[:-1]] = b
        # Steps after a replica's basis was complete are padding: decoupled (beta 0) diagonal
        # entries set below every real eigenvalue (Gershgorin), so they never become the top.
        valid = idx[None, :] < self.size[:, None]
        radius = np.abs(np.pad(b, ((0, 0), (1, 0)))) + np.abs(np.pad(b, ((0, 0), (0, 1))))
        floor = np.min(np.where(valid, a - radius, np.inf), axis=1, initial=np.inf)
        floor = np.where(np.isfinite(floor), floor, 0.0) - 1.0
        t[:, idx, idx] = np.where(valid, a, floor[:, None])
        t = np.where(np.isfinite(t), t, 0.0)
        values, vectors = np.linalg.eigh(t)
        theta, s = values[:, -1], vectors[:, :, -1]
        last = s[np.arange(self.k), np.maximum(self.size - 1, 0)]
        residual = np.where(self.done, 0.0, np.abs(self.betas[-1] * last))
        return theta, s, residual


class _Flat:
    """Vectors as one ``[K, P]`` matrix (K = 1 unbatched), so that the basis operations are a
    few large ops instead of a few per weight tensor per basis vector."""

    def __init__(self, like: Vectors, batched: bool) -> None:
        self.batched = batched
        self.shapes = [tuple(v.shape[1:]) if batched else tuple(v.shape) for v in like]
        self.sizes = [int(np.prod(sh)) for sh in self.shapes]

    def flat(self, vs: Vectors) -> tf.Tensor:
        if not self.batched:
            vs = [v[None] for v in vs]
        k = tf.shape(vs[0])[0]
        rows = [tf.reshape(v, tf.stack([k, size])) for v, size in zip(vs, self.sizes, strict=True)]
        return tf.concat(rows, 1)

    def vectors(self, m: tf.Tensor) -> Vectors:
        parts = tf.split(m, self.sizes, axis=1)
        out = [tf.reshape(p, [-1, *sh]) for p, sh in zip(parts, self.shapes, strict=True)]
        return out if self.batched else [o[0] for o in out]


def _product(matvec: MatVec, q: tf.Tensor, shape: _Flat, done: np.ndarray, compact: bool) -> tf.Tensor:
    """``A q`` as a flat matrix; with ``compact``, computed for the live replicas only."""
    live = np.flatnonzero(~done)
    if not compact or len(live) == len(done):
        return shape.flat(matvec(shape.vectors(q)))
    part = shape.flat(matvec(shape.vectors(tf.gather(q, live)), live))
    return tf.scatter_nd(live[:, None], part, tf.shape(q, out_type=tf.int64))


def _cycle(
    matvec: MatVec, start: Vectors, steps: int, batched: bool, tolerance: float | None, compact: bool
) -> tuple[np.ndarray, Vectors, int]:
    """One Lanczos run of at most ``steps`` products: Ritz values, Ritz vectors, products used."""
    shape = _Flat(start, batched)
    q = tf.math.l2_normalize(shape.flat(start), axis=1)  # a zero row stays zero
    k = int(q.shape[0])
    t = _Tridiagonal(k)
    basis = [q]
    theta = np.zeros(k)
    s = np.ones((k, 1))
    used = 0
    for _ in range(steps):
        z = _product(matvec, q, shape, t.done, compact)
        used += 1
        alpha = tf.reduce_sum(q * z, axis=1)
        stacked = tf.stack(basis, axis=1)  # [K, j, P]
        for _twice in range(2):  # full reorthogonalisation (alpha q and beta q_prev are in it)
            z -= tf.einsum("kjp,kj->kp", stacked, tf.einsum("kjp,kp->kj", stacked, z))
        beta = tf.norm(z, axis=1)
        t.add(alpha.numpy(), beta.numpy())
        theta, s, residual = t.top()
        if tolerance is not None:
            settled = residual <= tolerance * np.abs(theta)
            if compact:  # a settled replica's estimate ends here; the others go on without it
                t.freeze(settled & ~t.done)
            elif settled.all():
                break
        if t.done.all():
            break
        # Replicas whose basis is complete get a zero vector: their coefficients stop there.
        keep = np.where(t.done, 0.0, 1.0 / np.maximum(beta.numpy(), 1e-30)).astype(np.float32)
        q = z * keep[:, None]
        basis.append(q)
    ritz = tf.einsum("kjp,kj->kp", tf.stack(basis[: s.shape[1]], axis=1), tf.constant(s, tf.float32))
    return theta, shape.vectors(tf.math.l2_normalize(ritz, axis=1)), used


def top_eigenvalue(
    matvec: MatVec,
    start: Vectors,
    iterations: int,
    *,
    batched: bool = False,
    tolerance: float | None = None,
    compact: bool = False,
) -> tuple[tf.Tensor, Vectors]:
    """The largest (algebraic) eigenvalue after ``iterations`` products, and its Ritz vector.

    Returns a scalar, or ``[K]`` with ``batched``, and the unit vector to warm-start the
    next estimate from. With ``tolerance``, stops once every replica's residual bound
    is below that fraction of its estimate (``iterations`` stays the cap). ``compact``
    (batched): ``matvec(v, rows)`` computes the product for the replicas at ``rows``
    only, and each replica's estimate ends as soon as its own bound is met (or its basis
    is complete), so later products cost only the replicas still converging.
    """
    left = max(1, int(iterations))
    v = start
    theta = np.zeros(1)
    while left > 0:
        steps = min(left, RESTART)
        theta, v, used = _cycle(matvec, v, steps, batched, tolerance, compact and batched)
        left -= used
        if used < steps:  # stopped early: converged, or every basis is complete
            break
    lam = tf.constant(theta if batched else theta[0], tf.float32)
    return lam, v
