from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def config_key(params: Mapping[str, Any]) -> str:
    """Canonical JSON of a configuration: its identity within a sweep."""
    return json.dumps(dict(sorted(params.items())), separators=(",", ":"), sort_keys=True)
