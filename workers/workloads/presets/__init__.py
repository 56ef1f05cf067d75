"""Built-in workloads (presets) of the three user reports plus two checks.

Parameters and defaults live in ``service.core.workloads`` (no TensorFlow);
these classes build the data and the Keras models.
"""

from __future__ import annotations

from workers.workloads.presets._common import PresetWorkload
from workers.workloads.presets.least_squares import LeastSquares
from workers.workloads.presets.pixel import PixelColor
from workers.workloads.presets.sensor import CosArccos, SensorLSTM
from workers.workloads.presets.sequence import SequenceRNN

PRESET_CLASSES: dict[str, type[PresetWorkload]] = {
    "sensor_lstm": SensorLSTM,
    "cos_arccos": CosArccos,
    "sequence_rnn": SequenceRNN,
    "pixel_color": PixelColor,
    "least_squares": LeastSquares,
}

__all__ = ["PRESET_CLASSES", "CosArccos", "LeastSquares", "PixelColor", "SensorLSTM", "SequenceRNN"]
