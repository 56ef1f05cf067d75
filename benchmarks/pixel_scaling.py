"""Report 3: where pixel_color's seeds split, as a function of lr * image_size**2.

The pixel_color preset's Flatten -> Dense(3) layer has image_size**2 * 112
non-negative inputs and Adam moves each of its weights by about lr per step,
so the logits' jump in the first steps grows with lr * S**2. This probe trains
the preset's own data and model with plain ``model.fit`` (one seed after
another, as the user would) at several image sizes, each at learning rates
given as lr * S**2 products, and prints per (S, lr): the seeds that reached
>= 90% validation accuracy, the median first-epoch training loss and the
final validation accuracies. It is a probe, not a test: the 224 x 224 size
takes ~200 s per seed-epoch on 2 CPU cores (use a GPU).

    python benchmarks/pixel_scaling.py --sizes 16 32 64 --products 25 50 100 --seeds 4 --epochs 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--products", type=float, nargs="+", default=[25.0, 50.0, 100.0], help="lr * S**2 values")
    ap.add_argument("--lrs", type=float, nargs="+", help="learning rates as they are (instead of --products)")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--per-class", type=int, default=1500, help="training images per class")
    args = ap.parse_args()

    import keras

    from workers.workloads.registry import build_preset

    print("   S         lr  lr*S^2  success  first-epoch loss (median)  val acc per seed", flush=True)
    for size in args.sizes:
        wl = build_preset(
            "pixel_color",
            {"image_size": size, "n_train_per_class": args.per_class, "n_val_per_class": args.per_class // 3},
        )
        data = wl.dataset()
        for lr in args.lrs or [p / size**2 for p in args.products]:
            product = lr * size**2
            t0 = time.perf_counter()
            accs, first = [], []
            for seed in range(args.seeds):
                keras.utils.set_random_seed(seed)
                model = wl.build_model()
                model.compile(optimizer=keras.optimizers.Adam(lr), loss=wl.loss, metrics=["accuracy"])
                hist = model.fit(
                    data.x_train,
                    data.y_train,
                    batch_size=32,
                    epochs=args.epochs,
                    validation_data=(data.x_val, data.y_val),
                    verbose=0,
                ).history
                accs.append(hist["val_accuracy"][-1])
                first.append(hist["loss"][0])
            ok = sum(a >= 0.9 for a in accs)
            print(
                f"{size:4d} {lr:10.3g} {product:7.0f}  {ok:3d}/{args.seeds:<3d} "
                f"{statistics.median(first):14.2f}             "
                f"{' '.join(f'{a:.2f}' for a in accs)}  ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
