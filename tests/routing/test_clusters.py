"""Cluster configuration, sources and weighted placement (pure code, no processes)."""

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from routing.clusters import (
    Cluster,
    ClusterConfigError,
    ClusterSet,
    ClusterState,
    file_source,
    parse_cluster_spec,
)
from routing.placement import SmoothWeightedRoundRobin


def test_cli_spec_with_options() -> None:
    cluster = parse_cluster_spec("3=10.0.0.5:26500,weight=4,state=DRAINING,name=blue")
    assert (cluster.id, cluster.address, cluster.weight, cluster.state, cluster.name) == (
        3,
        "10.0.0.5:26500",
        4,
        ClusterState.DRAINING,
        "blue",
    )
    assert parse_cluster_spec("1=h:1").name == "cluster-1"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("x=h:1", "is not a number"),
        ("32=h:1", "out of range"),
        ("1=h", "HOST:PORT"),
        ("1=h:99999", "port 1..65535"),
        ("1=h:1,weight=-1", "weight"),
        ("1=h:1,state=paused", "state must be one of"),
        ("1h:1", "expected ID=HOST:PORT"),
    ],
)
def test_bad_specs_name_the_problem(spec: str, message: str) -> None:
    with pytest.raises(ClusterConfigError, match=message):
        parse_cluster_spec(spec)


def test_file_source_rereads_on_change_and_reports_bad_content(tmp_path: Path) -> None:
    path = tmp_path / "clusters.json"
    path.write_text(json.dumps([{"id": 1, "name": "a", "address": "h:1", "weight": 1, "state": "active"}]))
    source = file_source(path)
    assert [c.state for c in source()] == [ClusterState.ACTIVE]
    path.write_text(json.dumps([{"id": 1, "name": "a", "address": "h:1", "weight": 1, "state": "draining"}]))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a distinct mtime
    assert [c.state for c in source()] == [ClusterState.DRAINING]
    path.write_text('[{"id": 1, "address": "h:1"}, {"id": 1, "address": "h:2"}]')
    with pytest.raises(ClusterConfigError, match="appears twice"):
        source()


def test_cluster_set_swaps_atomically_and_notifies() -> None:
    changes = []
    clusters = ClusterSet([{"id": 2, "address": "h:2"}, {"id": 1, "address": "h:1"}])
    clusters.on_change(lambda old, new: changes.append(([c.id for c in old], [c.id for c in new])))
    assert [c.id for c in clusters] == [1, 2]
    assert clusters.replace([Cluster(id=1, address="h:1"), Cluster(id=2, address="h:2")]) is False
    assert clusters.replace([Cluster(id=1, address="h:1", state=ClusterState.DISABLED)]) is True
    assert changes == [([1, 2], [1])]
    assert clusters.routable() == () and clusters.active() == ()


def test_smooth_weighted_round_robin_follows_weights_and_spreads() -> None:
    rr = SmoothWeightedRoundRobin()
    a, b, c = (
        Cluster(id=1, address="h:1", weight=3),
        Cluster(id=2, address="h:2", weight=1),
        Cluster(id=3, address="h:3", weight=0),
    )
    picks = [rr.pick([a, b, c]).id for _ in range(40)]  # type: ignore[union-attr]
    assert Counter(picks) == {1: 30, 2: 10}
    assert all(picks[i : i + 4].count(2) == 1 for i in range(0, 40, 4))
    order = [x.id for x in rr.order([a, b, c])]
    assert sorted(order) == [1, 2]  # every weighted candidate once (retry order), weight 0 never
    assert rr.pick([c]) is None
    assert rr.pick([b]) is b  # a cluster leaving the candidates just stops being picked
