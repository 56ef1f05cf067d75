"""One pack in training: its replicas, their stacked state, and how it shrinks (compaction).

A pack holds ``k`` stacked replicas: its real ones and, under XLA (static
shapes), masked copies of replica 0 up to a bucket. When replicas end early
(a non-finite loss) the pack can go on with the live ones only
(``compacted``): every per-replica tensor of the state is gathered along the
replica axis, and everything else a replica owns (its batch order's RNG, its
learning-rate table, its plateau controller, its records) lives on the host
in its ``PackReplica`` and simply moves with it. ``compaction`` decides when
that pays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf

from service.core.records import PackResize
from workers.training.interface import ReplicaStatus
from workers.training.packs.epoch_function import OptimizerState
from workers.training.packs.replicas import PackReplica
from workers.training.vector_optimizers import VectorHyper, hyper_from_params


@dataclass
class Pack:
    """One pack in training: its replicas, padded to ``k`` with masked copies of replica 0."""

    replicas: list[PackReplica]
    k: int
    batch: int
    steps: int  # per epoch
    jit: bool
    jit_eval: bool
    hyper: VectorHyper
    hyper_t: dict[str, tf.Tensor]
    state: OptimizerState
    active: np.ndarray  # [k] bool: replicas still training (padding is never active)
    dropout_seed: tf.Tensor
    # Every replica that ever trained in this pack, in order (compaction drops ended ones
    # from ``replicas``; their results are still returned).
    members: list[PackReplica] = field(default_factory=list)
    resizes: list[PackResize] = field(default_factory=list)
    first_k: int = 0  # ``k`` at the start (before any compaction)

    def __post_init__(self) -> None:
        if not self.members:
            self.members = list(self.replicas)
        self.first_k = self.first_k or self.k

    @property
    def pad(self) -> int:
        return self.k - len(self.replicas)

    def live(self) -> list[int]:
        """Indices (in ``replicas``) of the replicas still training."""
        return [i for i, r in enumerate(self.replicas) if r.training]

    def stop(self, i: int, status: ReplicaStatus) -> None:
        self.replicas[i].stop(status)
        self.active[i] = False

    def stop_all(self, status: ReplicaStatus) -> None:
        for i, r in enumerate(self.replicas):
            if r.training:
                self.stop(i, status)

    def padded(self, rows: list[Any]) -> list[Any]:
        """Per-replica rows, then replica 0's again for each padding replica."""
        return rows + [rows[0]] * self.pad

    def compacted(self, keep: Sequence[int], k: int, *, epoch: int, compiled: bool) -> Pack:
        """The same pack with only the replicas at ``keep`` (padded to ``k`` under XLA).

        Each kept replica's weights, optimizer slots and hyperparameters are gathered
        unchanged, so its next steps are the ones it would have taken in the larger pack:
        the replica axis of every computation is independent (a batched matmul, a
        per-replica loss; ``d sum(loss) / d w_k = d loss_k / d w_k``). The step counter
        and the dropout key are the pack's and stay as they are.
        """
        keep = list(keep)
        if not keep:
            raise ValueError("a compacted pack keeps at least one replica")
        pad = k - len(keep)
        index = tf.constant(keep + [keep[0]] * pad, tf.int32)
        replicas = [self.replicas[i] for i in keep]
        resize = PackResize(epoch=epoch, size=len(keep), compiled=compiled)
        for r in replicas:
            r.resizes.append(resize)
        hyper = hyper_from_params([r.resolved for r in replicas] + [replicas[0].resolved] * pad)
        return Pack(
            replicas=replicas,
            k=k,
            batch=self.batch,
            steps=self.steps,
            jit=self.jit,
            jit_eval=self.jit_eval,
            hyper=hyper,
            hyper_t=hyper.as_tensors(),
            state=gather_replicas(self.state, index),
            active=np.array([True] * len(keep) + [False] * pad),
            dropout_seed=self.dropout_seed,
            members=self.members,
            resizes=[*self.resizes, resize],
            first_k=self.first_k,
        )


def gather_replicas(state: OptimizerState, index: tf.Tensor) -> OptimizerState:
    """Every per-replica tensor of ``state`` (rank >= 1: leading replica axis) at ``index``."""

    def take(t: tf.Tensor) -> tf.Tensor:
        return t if t.shape.rank == 0 else tf.gather(t, index, axis=0)

    gathered: OptimizerState = tf.nest.map_structure(take, state)
    return gathered
