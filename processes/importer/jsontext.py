"""JSON decoding of record envelopes: orjson when installed, the standard library otherwise.

orjson parses record JSON several times faster than `json`. It is used for whole records only,
whose numbers are int64 keys, positions, timestamps and counters by protocol (reference §3.3):
orjson silently turns integers beyond 64 bits into floats, so the text of a process variable's
value, which may hold any number, is always decoded with `json` (fold.py). Text orjson rejects is
decoded again with `json`, which then decides and explains.
"""

from __future__ import annotations

import json
from typing import Any

try:  # optional speed-up, see the module docstring
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None  # type: ignore[assignment]


def loads_record(text: str | bytes) -> Any:
    if orjson is not None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)
