"""A pack's compiled functions (epoch and evaluation), and the cache that reuses them.

Hyperparameters are tensor inputs, not graph constants, so one compiled pair
serves every pack with the same architecture, data shapes and set of
optimizer kinds. Without XLA the batch size and the number of replicas are
inputs too; with XLA (static shapes) they are part of the key, and packs are
padded to a bucket (``sizing.pack_bucket``) to reuse compilations.

The cache belongs to whoever owns it (``packs.caches``): a trainer, or the
worker for all its trainers.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import tensorflow as tf

from workers.training._stacked_model import StackedPlan
from workers.training.metrics import LabelKind
from workers.training.packs.epoch_function import EpochResult, make_epoch_fn
from workers.training.packs.evaluation import eval_chunk_size, make_eval_fn
from workers.training.vector_optimizers import OptimizerKind

logger = logging.getLogger(__name__)

_CAPACITY = 16


@dataclass(frozen=True)
class CompileRequest:
    """Everything a pack's compiled functions depend on."""

    plan: StackedPlan
    loss: str
    kind: LabelKind
    batch: int
    k: int | None  # replicas in the pack; None: a dynamic replica axis (without XLA)
    k_budget: int  # the most replicas a call may carry (sizes the evaluation chunk)
    n: int  # training examples
    n_eval_max: int  # the most examples one full-set evaluation sees
    x_spec: tf.TensorSpec
    y_spec: tf.TensorSpec
    kinds: frozenset[OptimizerKind]
    jit: bool  # the epoch function under XLA
    jit_eval: bool  # the evaluation function under XLA

    def weight_specs(self) -> list[tf.TensorSpec]:
        return [tf.TensorSpec((self.k, *s), tf.float32) for s in self.plan.weight_shapes]

    def cache_key(self) -> Hashable:
        """The request's identity for the cache: what changes the compiled graphs."""
        return (
            self.plan.signature,
            self.loss,
            self.kind,
            self.batch if self.jit else 0,  # without XLA the batch size is an input
            # and so is the number of replicas; the evaluation's chunk is sized for the budget
            self.k if self.jit else ("any", self.k_budget),
            self.n,
            self.n_eval_max,
            tuple(self.x_spec.shape),
            tuple(self.y_spec.shape),
            self.y_spec.dtype.name,
            self.kinds,
            self.jit,
            self.jit_eval,
        )


@dataclass
class CompiledPack:
    """The compiled pair, and whether each has run once (its first call traces and compiles)."""

    epoch_fn: Callable[..., EpochResult]
    eval_fn: Callable[..., tuple[tf.Tensor, tf.Tensor]]
    eval_chunk: int
    epoch_compiled: bool = False
    eval_compiled: bool = False
    compile_s: float | None = None  # the epoch function's first call (trace + compile + one epoch)


def compile_pack(req: CompileRequest) -> CompiledPack:
    chunk = eval_chunk_size(req)
    return CompiledPack(epoch_fn=make_epoch_fn(req), eval_fn=make_eval_fn(req, chunk), eval_chunk=chunk)


class CompiledFunctions:
    """Compiled pairs by request, least recently used dropped beyond ``capacity``."""

    def __init__(self, capacity: int = _CAPACITY) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[Hashable, CompiledPack] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def cached(self, req: CompileRequest) -> bool:
        """Whether the pair for ``req`` is here (compaction asks before paying for one)."""
        return req.cache_key() in self._entries

    def get_or_compile(self, req: CompileRequest) -> tuple[CompiledPack, bool]:
        """The pair for ``req`` and whether it was cached (compiled now if it was not)."""
        key = req.cache_key()
        hit = self._entries.get(key)
        if hit is not None:
            self._entries.move_to_end(key)
            return hit, True
        # One line per new compiled function: a long-lived worker should log it once per
        # (architecture, optimizer kinds; with XLA also batch size and bucket), whatever the
        # number of packs.
        logger.info(
            "compiling pack functions: batch=%d bucket=%s kinds=%s xla=%d (%d cached)",
            req.batch,
            req.k if req.jit else "any",
            ",".join(sorted(req.kinds)),
            int(req.jit),
            len(self._entries),
        )
        compiled = compile_pack(req)
        self._entries[key] = compiled
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        return compiled, False
