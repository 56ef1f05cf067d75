"""Frozen records returned by repositories: ORM rows never leave service.core."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from service.core.spec import SweepSpec
from service.core.states import RunStatus


@dataclass(frozen=True)
class Progress:
    waiting: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def total(self) -> int:
        return self.waiting + self.running + self.completed + self.failed + self.cancelled

    @property
    def done(self) -> int:
        return self.completed + self.failed + self.cancelled


@dataclass(frozen=True)
class SweepRecord:
    id: int
    name: str
    study_name: str
    study_id: int
    state: str
    workload_key: str
    sampler: str
    n_configs: int
    n_seeds: int
    epochs: int
    spec: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    refine_round: int
    progress: Progress = field(default_factory=Progress)
    runs_total: int = 0
    runs_done: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["progress"] = {**asdict(self.progress), "total": self.progress.total}
        return d


@dataclass(frozen=True)
class ConfigRecord:
    id: int
    sweep_id: int
    params: dict[str, Any]
    state: str
    trial_id: int | None
    trial_number: int | None
    attempts: int
    refine_round: int
    value: float | None
    worker_id: str | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None


# What a run's flags and metrics mean (docs/architecture.md, "Run classes", "Fluctuation"); in the API schema.
RUN_FLAGS_DOC = (
    "Observations beside the class: `regressing` (the loss gave back 10-50% of its progress: "
    "0.1 < R <= 0.5), `plateaued` (target not reached and the loss no longer clearly falling), "
    "`overfitting` (validation loss rises after its minimum, the training loss does not), `spikes` "
    "(the loss spiked above 2x the previous epoch and recovered; see metrics spikes and largest_spike), "
    "`nonfinite` (training stopped at a NaN/Inf loss)."
)
RUN_METRICS_DOC = (
    "The class evidence and fluctuation measures. `target_reached`: the run *ended* at its target "
    "(mean of the last epochs); `epochs_to_target`: the first epoch that *touched* it, so a run can "
    "have both `epochs_to_target` and `target_reached: false` (it touched the target and fell back). "
    "`fluctuation`: noise of ln(full-set loss) per epoch over the second half, 1.4826 MAD of the "
    "detrended epoch-to-epoch changes / sqrt(2); `jump_p90`: 9 in 10 epoch-to-epoch changes are within "
    "this factor; `running_fluctuation`: the same for the running-mean loss Keras displays; `spikes`, "
    "`largest_spike`, `unrecovered_spike`: recovered spikes, the largest peak/pre-spike ratio, an "
    "open one at the end; `step_loss_var`, `step_log_std`: mini-batch loss variance (record_steps). "
    "With record_sharpness (docs/sharpness.md): `sharpness_peak_ratio`: the largest (preconditioned) "
    "sharpness / stability threshold over the measured epochs (up to the failure's onset); "
    "`sharpness_reached_epoch`: the first measured epoch at >= 0.9 of the threshold; "
    "`failure_onset_epoch`: where a divergence, rise after the minimum or first spike began; "
    "`sharpness_reached_first`: 1 when the threshold was reached before that onset, else 0."
)


@dataclass(frozen=True)
class PackResize:
    """After ``epoch`` the run's pack went on with ``size`` live replicas (compaction)."""

    epoch: int
    size: int
    compiled: bool = False  # a compiled function of the new size had to be compiled (XLA)


@dataclass(frozen=True)
class RunTraining:
    """How a run was trained: in a pack (its size, compaction, compiled function) or alone (why).

    Stored in the run's ``training`` column by the worker; None for runs trained
    before it was recorded and for runs that failed before training.
    """

    mode: Annotated[
        Literal["pack", "single"],
        Field(description="`pack`: with other replicas in one compiled step; `single`: alone."),
    ]
    pack_size: Annotated[int | None, Field(description="Replicas in the run's pack at its start.")] = None
    resized: Annotated[
        list[PackResize],
        Field(description="Compactions the run went through: after `epoch`, the pack went on with `size`."),
    ] = field(default_factory=list)
    compiled_function: Annotated[
        Literal["reused", "compiled"] | None,
        Field(description="The pack's compiled function: `reused` from the worker's cache, or `compiled`."),
    ] = None
    compile_seconds: Annotated[
        float | None,
        Field(description="Seconds the pack spent compiling (first calls of its new functions)."),
    ] = None
    xla: Annotated[bool | None, Field(description="Whether the pack's epoch function used XLA.")] = None
    fallback_reason: Annotated[
        str | None,
        Field(description="Why the run was trained one replica at a time (`single`), if it had to be."),
    ] = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RunTraining | None:
        if not data:
            return None
        resized = [PackResize(**r) for r in data.get("resized") or []]
        return cls(**{**data, "resized": resized})

    def describe(self) -> str:
        """One line for people: the run page and the worker's log."""
        if self.mode == "single":
            why = f": {self.fallback_reason}" if self.fallback_reason else ""
            return f"one replica at a time{why}"
        text = f"in a pack of {self.pack_size}"
        for r in self.resized:
            text += f", {r.size} after epoch {r.epoch}"
        if self.compiled_function == "reused":
            text += "; compiled function reused"
        elif self.compiled_function == "compiled":
            text += f"; compiled in {self.compile_seconds or 0.0:.1f} s"
        return text + (" (XLA)" if self.xla else "")


@dataclass(frozen=True)
class RunRecord:
    id: int
    sweep_id: int
    config_id: int
    trial_id: int
    seed: int
    init_seed: int
    data_seed: int
    status: str
    run_class: str | None
    flags: Annotated[list[str], Field(description=RUN_FLAGS_DOC)]
    metrics: Annotated[dict[str, Any], Field(description=RUN_METRICS_DOC)]
    epochs_run: int
    final_loss: float | None
    final_accuracy: float | None
    params: dict[str, Any]
    error: str | None
    traceback: str | None
    worker_id: str | None
    started_at: datetime | None
    finished_at: datetime | None
    step_losses: list[Any] | None = None
    training: Annotated[
        RunTraining | None, Field(description="How the run was trained (None: not recorded).")
    ] = None


@dataclass(frozen=True)
class CurvePoint:
    """One run's metrics at the end of one epoch: what a trainer reports, the curve
    table stores (non-finite values as NULL) and ``/v1/runs/{id}/curve`` returns.

    Epoch 0 is the evaluation at initialisation (before any step), so l0 is
    ``points[0].loss``. ``loss``/``accuracy`` are measured on the full training
    set at the end of the epoch; ``running_loss`` is the Keras-style mean of the
    mini-batch losses seen during the epoch (None for epoch 0). With the spec's
    ``record_sharpness``, ``sharpness`` is the top eigenvalue of the training-loss
    Hessian, ``preconditioned_sharpness`` that of P^-1 H with the optimizer's
    preconditioner (Adam, AdamW, RMSprop) and ``stability_threshold`` the value the
    relevant one of them is compared to (docs/sharpness.md); None at epochs not measured.
    """

    epoch: int
    loss: float | None
    accuracy: float | None
    running_loss: float | None
    val_loss: float | None
    val_accuracy: float | None
    learning_rate: float | None
    grad_norm: float | None
    sharpness: float | None = None
    preconditioned_sharpness: float | None = None
    stability_threshold: float | None = None


@dataclass(frozen=True)
class WorkerRecord:
    id: str
    hostname: str
    pid: int
    device: str
    state: str
    current_trial_id: int | None
    current_sweep_id: int | None
    started_at: datetime
    heartbeat_at: datetime
    trials_done: int
    train_seconds: float
    busy_seconds: float
    alive: bool


@dataclass(frozen=True)
class RunSlot:
    """One seed of a claimed configuration: the run row to report to, and its seeds."""

    run_id: int
    seed: int
    init_seed: int  # seeds the initial weights (and dropout)
    data_seed: int  # seeds the order of mini-batches


@dataclass(frozen=True)
class Claim:
    """A configuration a worker now owns: train all its seeds, then finish it."""

    sweep_id: int
    config_id: int
    trial_id: int
    params: dict[str, Any]
    runs: tuple[RunSlot, ...]
    spec: SweepSpec  # parsed once, when the configuration is claimed
    epochs: int


@dataclass(frozen=True)
class RunOutcome:
    """How one seed of a finished configuration ended, as the worker stores it."""

    run_id: int
    status: RunStatus
    run_class: str | None
    flags: list[str]
    metrics: dict[str, Any]
    epochs_run: int
    final_loss: float | None
    final_accuracy: float | None
    error: str | None = None
    traceback: str | None = None
    step_losses: list[Any] | None = None
    training: RunTraining | None = None
