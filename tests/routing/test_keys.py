"""Property tests of the global key codec (routing/keys.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.keys import (
    MAX_CLUSTER_ID,
    NO_KEY,
    UNSET_KEY,
    ZEEBE_KEY_LIMIT,
    InvalidKeyError,
    UnknownClusterError,
    cluster_of,
    from_global,
    global_field,
    local_field,
    to_global,
)

cluster_ids = st.integers(min_value=1, max_value=MAX_CLUSTER_ID)
partition_ids = st.integers(min_value=1, max_value=127)
counters = st.integers(min_value=1, max_value=(1 << 51) - 1)
zeebe_keys = st.builds(lambda p, n: (p << 51) + n, partition_ids, counters)


@given(cluster_ids, zeebe_keys)
def test_round_trip(cluster_id: int, zeebe_key: int) -> None:
    global_key = to_global(cluster_id, zeebe_key)
    assert from_global(global_key) == (cluster_id, zeebe_key)
    assert cluster_of(global_key) == cluster_id


@given(cluster_ids, zeebe_keys)
def test_global_keys_are_positive_int64_and_distinct_per_cluster(cluster_id: int, zeebe_key: int) -> None:
    global_key = to_global(cluster_id, zeebe_key)
    assert 0 < global_key < 2**63
    other = cluster_id % MAX_CLUSTER_ID + 1
    assert to_global(other, zeebe_key) != global_key


@given(cluster_ids, zeebe_keys)
def test_zeebe_partition_bits_are_kept(cluster_id: int, zeebe_key: int) -> None:
    # decodePartitionId(global) = (cluster << 7) | partition: the synthesized Topology's ids.
    assert to_global(cluster_id, zeebe_key) >> 51 == (cluster_id << 7) | (zeebe_key >> 51)


def test_first_keys_of_real_partitions() -> None:
    # reference §2.1: the first key on partition 1 is 2251799813685249.
    assert to_global(1, 2251799813685249) == (1 << 58) + 2251799813685249
    assert from_global((3 << 58) + 6755399441055745) == (3, 6755399441055745)


@given(st.integers(min_value=-(2**63), max_value=0), cluster_ids)
def test_non_positive_zeebe_keys_are_rejected(key: int, cluster_id: int) -> None:
    with pytest.raises(InvalidKeyError, match="not a key"):
        to_global(cluster_id, key)


@given(cluster_ids, st.integers(min_value=128, max_value=(1 << 12) - 1), counters)
def test_partition_ids_that_do_not_fit_are_rejected(cluster_id: int, partition_id: int, counter: int) -> None:
    with pytest.raises(InvalidKeyError, match=f"partition id {partition_id}"):
        to_global(cluster_id, (partition_id << 51) + counter)


@given(st.one_of(st.integers(max_value=0), st.integers(min_value=MAX_CLUSTER_ID + 1)), zeebe_keys)
def test_out_of_range_cluster_ids_are_rejected(cluster_id: int, zeebe_key: int) -> None:
    with pytest.raises(UnknownClusterError, match=f"cluster id {cluster_id} is out of range"):
        to_global(cluster_id, zeebe_key)


@given(zeebe_keys)
def test_plain_zeebe_key_is_cluster_zero(zeebe_key: int) -> None:
    with pytest.raises(UnknownClusterError, match="cluster id 0") as caught:
        from_global(zeebe_key)
    assert caught.value.cluster_id == 0


@given(st.integers(max_value=0))
def test_non_positive_global_keys_are_rejected(value: int) -> None:
    with pytest.raises(InvalidKeyError):
        from_global(value)


def test_global_key_without_zeebe_key_is_rejected() -> None:
    with pytest.raises(InvalidKeyError, match="holds no Zeebe key"):
        from_global(5 << 58)


def test_values_beyond_int64_are_rejected() -> None:
    with pytest.raises(InvalidKeyError, match="64-bit"):
        from_global(1 << 63)


@pytest.mark.parametrize("bad", [True, 1.5, "12", None])
def test_non_integers_are_rejected(bad: object) -> None:
    with pytest.raises(InvalidKeyError):
        from_global(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyError):
        to_global(1, bad)  # type: ignore[arg-type]


@given(cluster_ids)
def test_none_values_pass_through_fields_in_both_directions(cluster_id: int) -> None:
    for none in (NO_KEY, UNSET_KEY):
        assert global_field(cluster_id, none) == none
        assert local_field(none) == (None, none)


@given(cluster_ids, zeebe_keys)
def test_field_helpers_translate_real_keys(cluster_id: int, zeebe_key: int) -> None:
    global_key = global_field(cluster_id, zeebe_key)
    assert local_field(global_key) == (cluster_id, zeebe_key)


@given(st.integers(min_value=ZEEBE_KEY_LIMIT, max_value=2**63 - 1))
def test_every_int64_with_cluster_bits_round_trips_or_fails_cleanly(value: int) -> None:
    if value & (ZEEBE_KEY_LIMIT - 1) == 0:
        with pytest.raises(InvalidKeyError):
            from_global(value)
    else:
        cluster_id, zeebe_key = from_global(value)
        assert to_global(cluster_id, zeebe_key) == value
