"""The models people bring, against the naive loop, Optuna and the service, in one run each.

Workloads (``--workloads``, comma list):

- ``pixel_cnn``: pixel_color's data (the preset's generator, 16x16x3, a red or
  green centre pixel) with the small CNN report 3's answers recommend:
  Conv2D -> MaxPooling2D -> BatchNormalization -> Flatten -> Dense(softmax).
- ``digits_cnn``: scikit-learn's bundled digits (8x8x1, 10 classes), Conv2D ->
  MaxPooling2D -> BatchNormalization -> Flatten -> Dense(softmax).
- ``tokens_lstm``: generated token sequences (a class is which of two marker
  tokens appears), Embedding -> LSTM -> Dense(softmax).
- ``residual_mlp``: a functional MLP with a residual ``Add``.
- any preset name (``sensor_lstm``, ``sequence_rnn``, ``pixel_color``, ...).

For each, over one grid (learning rates x ``--batch`` x seeds, Adam):

(a)  the naive loop as users write it: a fresh model + ``model.fit`` per run;
(a') the naive loop that records what the service records: ``model.fit`` with a
     callback that runs ``model.evaluate`` on the full training (and
     validation) set after every epoch;
(b)  Optuna ``study.optimize(n_jobs=2)`` (GridSampler), each trial fitting its
     seeds with ``model.fit``;
(c)  the service end to end: ``sweeps serve --workers 2`` on a fresh SQLite
     file; the dataset (.npz) and the model (``model.to_json()``) uploaded, the
     sweep POSTed, polled until finished (presets are named, not uploaded).

(a), (a') and (b) are subsampled (``--naive-runs``, ``--optuna-trials``) and
extrapolated. Printed: replica-epochs/s of each and the ratios, the share of
each pack's time in compilation, steps and evaluation (the workers' ``pack
done:`` lines), and, when the workload was trained one replica at a time, the
reason the workers gave (so a figure never passes for a pack's).

Usage:
  python benchmarks/bench_workloads.py --quick                      # minutes on 2 cores
  python benchmarks/bench_workloads.py --workloads pixel_cnn --skip b
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_packs import _out, part_a, part_b, part_c_service, report_service  # noqa: E402

DEFAULT_WORKLOADS = "pixel_cnn,digits_cnn,tokens_lstm,residual_mlp"


class _Bench:
    """A workload defined here: deterministic integer-labelled data and a Keras model."""

    name = ""
    loss = "sparse_categorical_crossentropy"
    num_classes = 2
    default_params: dict[str, Any] = {"optimizer": "adam", "learning_rate": 1e-3, "batch_size": 32}

    def __init__(self) -> None:
        self._data: Any = None

    def dataset(self) -> Any:
        from workers.workloads.base import Dataset

        if self._data is None:
            x, y, xv, yv = self._arrays(np.random.default_rng(0))
            self._data = Dataset(x, y, xv, yv)
        return self._data

    def _arrays(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def build_model(self) -> Any:
        raise NotImplementedError


class PixelCNN(_Bench):
    name = "pixel_cnn"

    def _arrays(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        from workers.workloads.presets.pixel import pixel_images

        x, y = pixel_images(300, 16, rng)
        xv, yv = pixel_images(100, 16, rng)
        return x, y.astype(np.int64), xv, yv.astype(np.int64)

    def build_model(self) -> Any:
        import keras

        L = keras.layers
        return keras.Sequential(
            [
                keras.Input((16, 16, 3)),
                L.Conv2D(8, 3, activation="relu"),
                L.MaxPooling2D(2),
                L.BatchNormalization(),
                L.Flatten(),
                L.Dense(2, activation="softmax"),
            ]
        )


class DigitsCNN(_Bench):
    name = "digits_cnn"
    num_classes = 10

    def _arrays(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        from sklearn.datasets import load_digits

        d = load_digits()
        x = (d.images / 16.0).astype(np.float32)[..., None]
        y = d.target.astype(np.int64)
        idx = rng.permutation(len(x))
        tr, va = idx[:1400], idx[1400:]
        return x[tr], y[tr], x[va], y[va]

    def build_model(self) -> Any:
        import keras

        L = keras.layers
        return keras.Sequential(
            [
                keras.Input((8, 8, 1)),
                L.Conv2D(16, 3, activation="relu", padding="same"),
                L.MaxPooling2D(2),
                L.BatchNormalization(),
                L.Flatten(),
                L.Dense(10, activation="softmax"),
            ]
        )


class TokensLSTM(_Bench):
    """Class 1 iff marker token 2 occurs before marker token 3 (order matters: a recurrent task)."""

    name = "tokens_lstm"
    VOCAB, T = 50, 20

    def _arrays(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        def make(n: int) -> tuple[np.ndarray, np.ndarray]:
            x = rng.integers(4, self.VOCAB, size=(n, self.T))
            y = rng.integers(0, 2, n)
            for i in range(n):
                a, b = sorted(rng.choice(self.T, 2, replace=False))
                x[i, a], x[i, b] = (2, 3) if y[i] else (3, 2)
            return x.astype(np.float32), y.astype(np.int64)

        (x, y), (xv, yv) = make(600), make(200)
        return x, y, xv, yv

    def build_model(self) -> Any:
        import keras

        L = keras.layers
        return keras.Sequential(
            [
                keras.Input((self.T,)),
                L.Embedding(self.VOCAB, 16),
                L.LSTM(16),
                L.Dense(2, activation="softmax"),
            ]
        )


class ResidualMLP(_Bench):
    name = "residual_mlp"
    num_classes = 10

    def _arrays(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        x, y, xv, yv = DigitsCNN()._arrays(rng)
        return x.reshape(len(x), 64), y, xv.reshape(len(xv), 64), yv

    def build_model(self) -> Any:
        import keras

        L = keras.layers
        inp = keras.Input((64,))
        h = L.Dense(64, activation="relu")(inp)
        r = L.Dense(64, activation="relu")(h)
        h = L.Add()([h, r])
        out = L.Dense(10, activation="softmax")(h)
        return keras.Model(inp, out)


BENCH_WORKLOADS: dict[str, type[_Bench]] = {w.name: w for w in (PixelCNN, DigitsCNN, TokensLSTM, ResidualMLP)}


def build(name: str) -> Any:
    if name in BENCH_WORKLOADS:
        return BENCH_WORKLOADS[name]()
    from workers.workloads.registry import build_preset

    return build_preset(name, {})


def _post(url: str, body: bytes, content_type: str) -> dict[str, Any]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    with urllib.request.urlopen(req, timeout=60) as r:
        out: dict[str, Any] = json.loads(r.read())
        return out


def uploader(workload: Any) -> Any:
    """The service's workload block for ``workload``: uploads its data and model (presets: named)."""

    def block(base: str) -> dict[str, Any]:
        if workload.name not in BENCH_WORKLOADS:
            return {"preset": workload.name, "params": {}}
        ds = workload.dataset()
        buf = io.BytesIO()
        np.savez_compressed(buf, x_train=ds.x_train, y_train=ds.y_train, x_val=ds.x_val, y_val=ds.y_val)
        boundary = uuid.uuid4().hex
        head = f"--{boundary}\r\nContent-Disposition: form-data; "
        parts = [
            f'{head}name="name"\r\n\r\n{workload.name}\r\n'.encode(),
            f'{head}name="file"; filename="data.npz"\r\n'.encode()
            + b"Content-Type: application/octet-stream\r\n\r\n"
            + buf.getvalue()
            + b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ]
        dataset = _post(f"{base}/datasets", b"".join(parts), f"multipart/form-data; boundary={boundary}")
        body = {"name": workload.name, "dataset_id": dataset["id"], "model": workload.build_model().to_json()}
        wl = _post(f"{base}/workloads", json.dumps(body).encode(), "application/json")
        return dict(wl["sweep_ref"])

    return block


def fallback_reason(workload: Any) -> str | None:
    """Why packs cannot train the workload (None: they can), as the workers would say."""
    from workers.training.packs import can_pack

    ok, reason = can_pack(workload)
    return None if ok else reason


def run_one(name: str, args: argparse.Namespace, skip: set[str]) -> None:
    workload = build(name)
    g = {
        "learning_rate": args.lrs,
        "batch_size": [args.batch],
        "beta_1": [0.9],
        "seeds": args.seeds,
        "epochs": args.epochs,
    }
    total = len(args.lrs) * args.seeds * args.epochs
    _out(f"\n== {name}: lr {args.lrs} x batch {args.batch} x {args.seeds} seeds x {args.epochs} epochs")
    why = fallback_reason(workload)
    _out("   packs: " + ("yes" if why is None else f"NO, one replica at a time: {why}"))
    a = part_a(workload, g, args.naive_runs) if "a" not in skip else {}
    a2 = part_a(workload, g, args.naive_runs, record=True) if "a2" not in skip else {}
    b_rate = part_b(workload, g, args.optuna_trials, 1) if "b" not in skip else None
    runs = (
        part_c_service(g, args.workers, args.service_timeout, args.repeats, workload=uploader(workload))
        if "c" not in skip
        else []
    )
    a_rate, a2_rate = a.get(args.batch), a2.get(args.batch)
    _out(f"   summary ({total} replica-epochs; replica-epochs/s)")
    line = [f"(a) {a_rate:.2f}" if a_rate else None, f"(a') {a2_rate:.2f}" if a2_rate else None]
    line += [f"(b) {b_rate:.2f}" if b_rate else None]
    cost = f"; (a')/(a) {a2_rate / a_rate:.2f}" if a_rate and a2_rate else ""
    _out("   " + ", ".join(x for x in line if x) + cost)
    for i, run in enumerate(runs):
        _out(f"   (c) {'cold' if i == 0 else 'warm'}:")
        report_service(run, g, args.workers, a, a_rate, b_rate, a2_rate)
    if runs and why is not None and not runs[0].get("fallback"):
        _out(f"      (the workers' log had no fallback line; can_pack here says: {why})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", default=DEFAULT_WORKLOADS)
    ap.add_argument("--quick", action="store_true", help="fewer epochs, seeds and runs: minutes on 2 cores")
    ap.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 3e-3, 1e-2, 3e-2])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seeds", type=int, default=None, help="default 8, --quick 4")
    ap.add_argument("--epochs", type=int, default=None, help="default 20, --quick 6")
    ap.add_argument("--naive-runs", type=int, default=None, help="(a)/(a') runs timed; default 3, --quick 1")
    ap.add_argument("--optuna-trials", type=int, default=None, help="default 4, --quick 2")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=None, help="(c) cold then warm; default 2, --quick 1")
    ap.add_argument("--threads", type=int, default=1, help="TF threads of this process for (a), (a'), (b)")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: a,a2,b,c")
    ap.add_argument("--service-timeout", type=float, default=1800)
    args = ap.parse_args()
    q = args.quick
    args.seeds = args.seeds or (4 if q else 8)
    args.epochs = args.epochs or (6 if q else 20)
    args.naive_runs = args.naive_runs or (1 if q else 3)
    args.optuna_trials = args.optuna_trials or (2 if q else 4)
    args.repeats = args.repeats or (1 if q else 2)
    skip = set(filter(None, args.skip.split(",")))

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    for name in filter(None, args.workloads.split(",")):
        run_one(name.strip(), args, skip)


if __name__ == "__main__":
    main()
