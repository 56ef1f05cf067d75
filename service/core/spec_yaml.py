"""Reading a sweep spec written in YAML, with numbers as people write them.

PyYAML follows YAML 1.1, where ``1e-3`` (no dot) is a *string*; the spec's
fields take JSON types strictly, so ``learning_rate: [1e-3, 1e-2]`` would be
refused as "not a number". YAML 1.2 (and every JSON parser) reads it as a
float, and so does this loader.
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class _SpecLoader(yaml.SafeLoader):
    pass


_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_SpecLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def load_spec_yaml(text: str) -> Any:
    """The YAML document as Python data; ``1e-3`` is the float 0.001."""
    return yaml.load(text, Loader=_SpecLoader)  # noqa: S506 - a SafeLoader subclass
