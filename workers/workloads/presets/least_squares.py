"""Linear least squares whose edge of stability is known in closed form.

Model ``Dense(1, use_bias=False)`` on ``x`` of shape ``(n, d)``, loss Keras
``mse`` = ``(1/n) sum_i (x_i . w - y_i)^2``. Its Hessian is ``H = (2/n) X^T X``
(constant: the loss is quadratic). We build ``X = U diag(s) V^T`` with ``U``
(``n x d``, orthonormal columns) and ``V`` (``d x d`` orthogonal) random, and
``s_i = sqrt(n lambda_i / 2)``, so ``H = V diag(lambda) V^T`` has exactly the
eigenvalues ``lambda_i``, geometric from ``lambda_max`` down to
``lambda_max / condition``. ``y = X w* + noise`` with ``w* ~ N(0, I)``.

Full-batch gradient descent (SGD, momentum 0, ``batch_size = n``) iterates
``w_{t+1} - w_hat = (I - lr H)(w_t - w_hat)`` and is stable iff
``|1 - lr lambda_i| < 1`` for all i, i.e. **iff lr < 2 / lambda_max**
(``edge_lr``). Above it the error along the top eigenvector grows by
``|1 - lr lambda_max|`` per step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from service.core.errors import InvalidSpec
from workers.workloads.base import Dataset
from workers.workloads.presets._common import PresetWorkload


class LeastSquares(PresetWorkload):
    name = "least_squares"

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        n, d = self.params["n"], self.params["d"]
        if n < d:
            raise InvalidSpec(
                f"least_squares needs n >= d (got n={n}, d={d}) so that X has d singular values"
            )
        lam_max = float(self.params["lambda_max"])
        self.hessian_eigenvalues = np.geomspace(lam_max, lam_max / float(self.params["condition"]), d)
        self.edge_lr = 2.0 / lam_max
        # Full-batch GD by default, whatever n is.
        self.default_params["batch_size"] = n

    def _make_dataset(self, rng: np.random.Generator) -> Dataset:
        n, d = self.params["n"], self.params["d"]
        u, _ = np.linalg.qr(rng.standard_normal((n, d)))
        v, _ = np.linalg.qr(rng.standard_normal((d, d)))
        s = np.sqrt(n * self.hessian_eigenvalues / 2.0)
        x = u @ np.diag(s) @ v.T
        w_star = rng.standard_normal(d)
        y = x @ w_star + self.params["noise"] * rng.standard_normal(n)
        return Dataset(x.astype(np.float32), y[:, None].astype(np.float32))

    def build_model(self) -> Any:
        return keras.Sequential([keras.Input((self.params["d"],)), keras.layers.Dense(1, use_bias=False)])
