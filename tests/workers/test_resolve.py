"""workers/resolve.py: a sweep's workload block -> a Workload, the last few kept per resolver."""

from __future__ import annotations

import pytest

from service.core.db import Database
from service.core.errors import NotFound
from workers.resolve import WorkloadResolver
from workers.workloads.presets import LeastSquares


def _block(n: int) -> dict[str, object]:
    return {"preset": "least_squares", "params": {"n": n, "d": 2}}


def test_a_preset_block_is_built_once_and_kept(db: Database) -> None:
    resolver = WorkloadResolver(db)
    first = resolver.resolve(_block(8))
    assert isinstance(first, LeastSquares) and first.params["n"] == 8
    # The same block, keys in another order, is the same workload object.
    assert resolver.resolve({"params": {"d": 2, "n": 8}, "preset": "least_squares"}) is first
    assert resolver.resolve(_block(9)) is not first


def test_the_least_recently_used_workload_is_dropped_after_four(db: Database) -> None:
    resolver = WorkloadResolver(db)
    built = {n: resolver.resolve(_block(n)) for n in (4, 5, 6, 7)}
    assert resolver.resolve(_block(4)) is built[4]  # 4 is now the most recently used
    resolver.resolve(_block(8))  # a fifth: 5, the least recently used, goes
    assert resolver.resolve(_block(4)) is built[4]
    assert resolver.resolve(_block(5)) is not built[5]


def test_a_deleted_uploaded_workload_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound, match="workload 12345 was deleted"):
        WorkloadResolver(db).resolve({"id": 12345})


def _register(db: Database, model: object, *, weights: bytes | None = None) -> int:
    import io

    import keras
    import numpy as np

    from service.core.repo import datasets as datasets_repo
    from service.core.workload_uploads import ModelUpload, register_model

    assert isinstance(model, keras.Model)
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    np.savez(buf, x_train=rng.normal(size=(16, 4)).astype(np.float32), y_train=np.arange(16) % 2)
    with db.transaction() as s:
        ds = datasets_repo.insert_dataset(
            s,
            name="d",
            sha256="x",
            summary={
                "n_train": 16,
                "n_val": 0,
                "input_shape": [4],
                "label_format": "integer",
                "num_classes": 2,
                "x_dtype": "float32",
                "class_counts": [8, 8],
            },
            data=buf.getvalue(),
        )
    upload = ModelUpload(
        name="m",
        dataset_id=ds.id,
        model_json=model.to_json(),
        compile_config=model.get_compile_config(),
        weights=weights,
    )
    return register_model(db, upload).id


def _binary_model(optimizer: object) -> object:
    import keras

    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(4), keras.layers.Dense(1, activation="sigmoid")]
    )
    model.compile(optimizer=optimizer, loss="binary_crossentropy")  # type: ignore[arg-type]
    return model


def test_an_uploaded_workload_trains_with_its_compiled_optimizer(db: Database) -> None:
    """RMSprop(rho=0.8) compiled by the user: a configuration that sweeps only the learning rate
    builds RMSprop with rho 0.8 (and the compiled clipnorm), not Adam."""
    import keras

    from workers.training.optimizers import build_optimizer

    model = _binary_model(keras.optimizers.RMSprop(learning_rate=2e-3, rho=0.8, clipnorm=0.5))
    workload = WorkloadResolver(db).resolve({"id": _register(db, model)})
    assert workload.default_params["optimizer"] == "rmsprop" and workload.loss == "binary_crossentropy"
    params = {**workload.default_params, "learning_rate": 0.01}  # what the trainers merge
    optimizer = build_optimizer(params, steps_per_epoch=2)
    assert isinstance(optimizer, keras.optimizers.RMSprop)
    assert optimizer.rho == pytest.approx(0.8) and optimizer.clipnorm == pytest.approx(0.5)
    assert float(optimizer.learning_rate) == pytest.approx(0.01)
    # Without a swept learning rate the compiled one is used.
    assert float(build_optimizer(workload.default_params, steps_per_epoch=2).learning_rate) == pytest.approx(
        2e-3
    )


def test_init_saved_starts_every_seed_from_the_saved_weights(db: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from workers.training.data_order import build_initial_model

    model = _binary_model("adam")
    weights_path = tmp_path / "m.weights.h5"
    model.save_weights(weights_path)  # type: ignore[attr-defined]
    workload_id = _register(db, model, weights=weights_path.read_bytes())
    resolver = WorkloadResolver(db)
    saved = resolver.resolve({"id": workload_id, "init": "saved"})
    seeded = resolver.resolve({"id": workload_id})
    a, b = (build_initial_model(saved, seed).get_weights() for seed in (1, 2))
    for x, y, original in zip(a, b, model.get_weights(), strict=True):  # type: ignore[attr-defined]
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(x, original)
    c, d = (build_initial_model(seeded, seed).get_weights() for seed in (1, 2))
    assert not np.array_equal(c[0], d[0])  # seeded: each seed draws its own


def test_init_saved_without_weights_is_not_found(db: Database) -> None:
    workload_id = _register(db, _binary_model("adam"))
    with pytest.raises(NotFound, match="no saved weights"):
        WorkloadResolver(db).resolve({"id": workload_id, "init": "saved"})
