"""Training packs: K replicas trained together in one compiled step.

Small models spend their time in per-op framework overhead, not arithmetic:
a step of a small LSTM costs about the same for one replica as for sixteen.
``PackTrainer`` builds every replica's Keras model with its own seed (exactly
as the single trainer does), stacks the weights along a leading replica axis
and trains all of them with one compiled function per epoch (XLA on GPUs, and
on CPU for the smallest batch sizes: ``sizing.XLA_CPU_MAX_BATCH``): each
replica gathers its own mini-batches from its own permutation, runs the same
forward pass (``_stacked_model``), takes its own optimizer step with its own
hyperparameters (``vector_optimizers``) and learning-rate schedule, and is
evaluated on the full training (and validation) set after every epoch.
Without XLA, LSTMs over long sequences run as TensorFlow's fused ``BlockLSTM``
kernel, one call per replica (``_lstm_fused``: 2x the batched scan at batch 32).

Semantics are those of ``workers.training.single`` (which see): effective
params ``{**workload.default_params, **replica.params}``, seeds and batch
order from ``data_order``, losses from ``metrics``, optimizers and schedules
from ``optimizers`` (schedules are evaluated with the very same Keras schedule
objects, once per run, into a per-step table), records per epoch, a replica
stops at its first non-finite mini-batch or epoch loss while the others go
on. Differences, by design:

- ``observer.on_epoch`` is called once per epoch with the records of every
  replica still training (one bulk write per epoch for the worker).
- Dropout masks come from a stateless RNG keyed by the pack and the step, so
  a model with dropout reproduces the lone run *in distribution*, not bit for
  bit.
- Weight-stacked arithmetic (batched matmuls instead of K separate ones)
  rounds differently in the last bit. Well-conditioned runs agree with the
  single trainer to float32 rounding; chaotic runs (high learning rate)
  amplify that rounding, so they are reproducible in distribution over seeds,
  not curve for curve.

Modules: ``sizing`` (can a workload be packed, how many replicas per pack),
``workload_data`` (data tensors, plan and initial weights per workload),
``epoch_function`` and ``evaluation`` (the compiled functions), ``compiled``
(their cache), ``caches`` (what a trainer, or a worker's trainers, reuse),
``replicas`` (one replica's schedule and records), ``trainer`` (the loop),
``stats`` (where the time went).
"""

from workers.training.packs.sizing import can_pack, choose_pack_size, pack_bucket
from workers.training.packs.stats import PackStats
from workers.training.packs.trainer import PackTrainer

__all__ = ["PackStats", "PackTrainer", "can_pack", "choose_pack_size", "pack_bucket"]
