"""workers/workloads/presets/pixel.py: images whose one pixel's colour is the label."""

from __future__ import annotations

import numpy as np

from workers.workloads.registry import build_preset


def test_pixel_color_labels_and_model() -> None:
    w = build_preset("pixel_color", {"image_size": 6, "n_train_per_class": 5, "n_val_per_class": 2})
    ds = w.dataset()
    assert ds.x_train.shape == (10, 6, 6, 3) and ds.x_val is not None and ds.x_val.shape == (4, 6, 6, 3)
    red = ds.x_train[:, 3, 3, 0] == 1.0
    assert np.array_equal(red, ds.y_train == 0)
    model = w.build_model()
    assert model.output_shape == (None, 3) and w.loss == "sparse_categorical_crossentropy"
    hot = build_preset("pixel_color", {"image_size": 6, "n_train_per_class": 5, "labels": "one_hot"})
    assert hot.dataset().y_train.shape == (10, 3) and hot.loss == "categorical_crossentropy"


def test_pixel_color_byte_scale_is_the_same_images_times_255() -> None:
    params = {"image_size": 6, "n_train_per_class": 5, "n_val_per_class": 2}
    unit = build_preset("pixel_color", params).dataset()
    byte = build_preset("pixel_color", {**params, "pixel_scale": "byte"}).dataset()
    np.testing.assert_allclose(byte.x_train, unit.x_train * 255, rtol=1e-6)
    assert byte.x_val is not None and float(byte.x_val.max()) <= 255.0
    np.testing.assert_array_equal(byte.y_train, unit.y_train)
    red = byte.x_train[byte.y_train == 0][:, 3, 3, :]
    assert (red == np.array([255.0, 0.0, 0.0], dtype=np.float32)).all()
