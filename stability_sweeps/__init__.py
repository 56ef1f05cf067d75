"""Stability Sweeps from Python: sweep your own compiled Keras model from a notebook or a script.

    import stability_sweeps as ss
    result = ss.sweep(model, x, y, space={"learning_rate": [1e-4, 1e-3, 1e-2], "batch_size": [2, 8, 32]})
    result.report()

``Client`` is the lower-level API (upload, workload, submit, read back). Everything goes through
the service's public HTTP API; ``service`` and ``workers`` are never imported here.
"""

from stability_sweeps.client import Client, Dataset, Workload
from stability_sweeps.errors import ApiError, EmbeddedServiceError, ServerUnreachable, SweepsError
from stability_sweeps.quick import sweep
from stability_sweeps.records import Records, Report
from stability_sweeps.sweeps import Sweep

__all__ = [
    "ApiError",
    "Client",
    "Dataset",
    "EmbeddedServiceError",
    "Records",
    "Report",
    "ServerUnreachable",
    "Sweep",
    "SweepsError",
    "Workload",
    "sweep",
]
