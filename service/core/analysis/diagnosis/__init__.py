"""Plain-language diagnosis of a sweep: where training is stable, what fails and why, what to change.

Every statement is computed from the sweep's own numbers (``evidence``), and
every remedy is offered only when the data supports it (``remedies``): a
dimension's value is recommended when, at otherwise identical settings, it
trained stably at least ``MIN_EFFECT`` (20 points) more often than the
alternative *and* the pooled Wilson 95% intervals of the two do not overlap.
Comparisons are always matched (same values of every other swept dimension),
so an unbalanced grid cannot fake an effect. ``wording`` turns the numbers
into sentences and Markdown; ``sections`` holds the typed report. Pure
functions: no database, no I/O.
"""

from service.core.analysis.diagnosis.evidence import MIN_EFFECT
from service.core.analysis.diagnosis.remedies import MIXED_SHARE
from service.core.analysis.diagnosis.report import diagnose
from service.core.analysis.diagnosis.sections import (
    DimensionEffect,
    Failure,
    Remedy,
    Report,
    SeedDependence,
    StableRegion,
)
from service.core.analysis.diagnosis.wording import report_to_markdown

__all__ = [
    "MIN_EFFECT",
    "MIXED_SHARE",
    "DimensionEffect",
    "Failure",
    "Remedy",
    "Report",
    "SeedDependence",
    "StableRegion",
    "diagnose",
    "report_to_markdown",
]
