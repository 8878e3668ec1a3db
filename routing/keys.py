"""Global key codec: put a Fleetflow cluster id into the unused high bits of a Zeebe key.

A Zeebe key is ``(partition_id << 51) + counter`` (reference zeebe-protocol.md §2.1) and is unique
per cluster only, so two clusters hand out the same keys. Fleetflow makes keys unique across
clusters (DESIGN §2)::

    global_key = (cluster_id << 58) | zeebe_key      cluster_id in 1..31, partition ids < 128

Bits 58..62 hold the cluster id, bit 63 (the sign) stays 0, so a global key is a positive int64
that still travels in every ``int64`` field of the gateway protocol. A Zeebe key fits if it is
below ``2**58``, i.e. its partition id is below 128.

Two values are not keys and get deliberate treatment:

* ``-1`` is Zeebe's "no key" (``ModifyProcessInstanceRequest.ActivateInstruction.
  ancestorElementInstanceKey = -1`` means "use the existing flow scope"; ``processDefinitionKey
  = -1`` means "by bpmnProcessId"), and
* ``0`` is protobuf's unset default (a response that has no such key, a request that does not
  name one).

The strict functions (:func:`to_global`, :func:`from_global`, :func:`cluster_of`) reject both:
a caller that means a real key gets a clear error instead of a silent ``0``. The ``*_field``
variants (:func:`global_field`, :func:`local_field`) are for protocol fields where "none" is a
legal value: they pass ``-1`` and ``0`` through unchanged in both directions.
"""

from __future__ import annotations

CLUSTER_SHIFT = 58
"""Bit position of the cluster id inside a global key."""

MIN_CLUSTER_ID = 1
MAX_CLUSTER_ID = 31
"""Cluster ids use 5 bits (58..62); bit 63 must stay 0 so keys stay positive int64 values."""

ZEEBE_KEY_LIMIT = 1 << CLUSTER_SHIFT
"""Every Zeebe key a cluster hands out must be below this (partition id < 128)."""

ZEEBE_PARTITION_SHIFT = 51
"""Zeebe's own partition bits start here (Protocol.KEY_BITS, reference §2.1)."""

MAX_PARTITION_ID = (ZEEBE_KEY_LIMIT >> ZEEBE_PARTITION_SHIFT) - 1
"""127: the highest Zeebe partition id whose keys still fit under the cluster bits."""

NO_KEY = -1
"""Zeebe's "no key" value; passes through untranslated in fields where it is legal."""

UNSET_KEY = 0
"""Protobuf's default for an unset int64; passes through untranslated in optional fields."""

NONE_VALUES = frozenset({NO_KEY, UNSET_KEY})

INT64_MAX = (1 << 63) - 1


class KeyCodecError(ValueError):
    """Base class for key codec errors."""


class InvalidKeyError(KeyCodecError):
    """The value is not a key this codec can translate (negative, zero, too large)."""


class UnknownClusterError(KeyCodecError):
    """The cluster id is outside 1..31, or names no configured cluster."""

    def __init__(self, message: str, *, cluster_id: int | None = None) -> None:
        super().__init__(message)
        self.cluster_id = cluster_id


def check_cluster_id(cluster_id: int) -> int:
    """Return ``cluster_id`` if it is a valid cluster id (1..31), else raise UnknownClusterError."""
    if isinstance(cluster_id, bool) or not isinstance(cluster_id, int):
        raise UnknownClusterError(f"cluster id must be an integer, got {cluster_id!r}", cluster_id=None)
    if not MIN_CLUSTER_ID <= cluster_id <= MAX_CLUSTER_ID:
        raise UnknownClusterError(
            f"cluster id {cluster_id} is out of range: cluster ids are "
            f"{MIN_CLUSTER_ID}..{MAX_CLUSTER_ID} (5 bits at bit {CLUSTER_SHIFT} of a global key; "
            "0 is reserved so that a plain Zeebe key is never mistaken for a global one)",
            cluster_id=cluster_id,
        )
    return cluster_id


def _check_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidKeyError(f"{what} must be an integer, got {value!r}")
    return value


def to_global(cluster_id: int, zeebe_key: int) -> int:
    """Return the global key for ``zeebe_key`` handed out by cluster ``cluster_id``.

    Raises InvalidKeyError for a key that is not positive or whose partition id does not fit
    (>= 128), UnknownClusterError for a cluster id outside 1..31.
    """
    check_cluster_id(cluster_id)
    zeebe_key = _check_int(zeebe_key, "zeebe key")
    if zeebe_key <= 0:
        raise InvalidKeyError(
            f"zeebe key {zeebe_key} is not a key: Zeebe keys are positive "
            "(-1 means 'no key' and 0 'unset'; use global_field() for fields where that is legal)"
        )
    if zeebe_key >= ZEEBE_KEY_LIMIT:
        partition_id = zeebe_key >> ZEEBE_PARTITION_SHIFT
        raise InvalidKeyError(
            f"zeebe key {zeebe_key} from cluster {cluster_id} has partition id {partition_id}, "
            f"but only partition ids up to {MAX_PARTITION_ID} fit next to the cluster id "
            f"(the key must be below 2**{CLUSTER_SHIFT})"
        )
    return (cluster_id << CLUSTER_SHIFT) | zeebe_key


def from_global(global_key: int) -> tuple[int, int]:
    """Split a global key into ``(cluster_id, zeebe_key)``.

    Raises InvalidKeyError for a value that is not a positive int64 or carries no Zeebe key,
    UnknownClusterError when the cluster bits are 0 (a plain Zeebe key, not a global one).
    """
    global_key = _check_int(global_key, "global key")
    if global_key <= 0:
        raise InvalidKeyError(
            f"key {global_key} is not a global key: global keys are positive "
            "(-1 means 'no key' and 0 'unset'; use local_field() for fields where that is legal)"
        )
    if global_key > INT64_MAX:
        raise InvalidKeyError(f"key {global_key} does not fit in a signed 64-bit integer")
    cluster_id = global_key >> CLUSTER_SHIFT
    zeebe_key = global_key & (ZEEBE_KEY_LIMIT - 1)
    if cluster_id == 0:
        raise UnknownClusterError(
            f"key {global_key} carries cluster id 0: it is a plain Zeebe key, not a Fleetflow "
            "global key (keys handed out through the routing proxy have a cluster id in "
            f"bits {CLUSTER_SHIFT}..62)",
            cluster_id=0,
        )
    if zeebe_key == 0:
        raise InvalidKeyError(
            f"key {global_key} names cluster {cluster_id} but holds no Zeebe key (lower bits are 0)"
        )
    return cluster_id, zeebe_key


def cluster_of(global_key: int) -> int:
    """Return the cluster id of a global key (validated as in :func:`from_global`)."""
    return from_global(global_key)[0]


def global_field(cluster_id: int, value: int) -> int:
    """Translate a key-carrying response field: -1 and 0 mean "none" and pass through."""
    if value in NONE_VALUES:
        return value
    return to_global(cluster_id, value)


def local_field(value: int) -> tuple[int | None, int]:
    """Translate a key-carrying request field: ``(cluster_id, zeebe_key)``.

    -1 and 0 mean "none" and come back as ``(None, value)`` unchanged.
    """
    if value in NONE_VALUES:
        return None, value
    return from_global(value)
