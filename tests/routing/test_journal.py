"""The deployment journal (routing/journal.py): order, per-cluster delivery, persistence."""

import asyncio
from pathlib import Path

import pytest

from routing.journal import DeploymentJournal


def test_pending_in_order_until_delivered_and_persisted(tmp_path: Path) -> None:
    path = tmp_path / "deployments.json"
    journal = DeploymentJournal(path)
    first = journal.append([("a.bpmn", b"<a/>")])
    second = journal.append([("b.bpmn", b"<b/>"), ("c.form", b"{}")], tenant_id="<default>")
    journal.mark_delivered(first, 1)
    assert journal.in_sync(2) is False
    assert [e.seq for e in journal.pending_for(2)] == [1, 2]
    assert [e.seq for e in journal.pending_for(1)] == [2]
    journal.mark_delivered(second, 1)
    assert journal.in_sync(1) is True  # the cached answer follows every change
    journal.mark_rejected(first, 2, "INVALID_ARGUMENT: not on this cluster")

    reloaded = DeploymentJournal(path)
    assert [e.seq for e in reloaded.pending_for(2)] == [2]
    entry = reloaded.entries[1]
    assert entry.resources == [("b.bpmn", b"<b/>"), ("c.form", b"{}")] and entry.tenant_id == "<default>"
    assert reloaded.entries[0].rejected == {2: "INVALID_ARGUMENT: not on this cluster"}
    assert reloaded.append([("d.bpmn", b"<d/>")]).seq == 3  # sequence continues after a restart


def test_a_deployment_nobody_took_is_dropped(tmp_path: Path) -> None:
    journal = DeploymentJournal(tmp_path / "j.json")
    entry = journal.append([("bad.bpmn", b"<")])
    journal.drop(entry)
    assert journal.entries == [] and journal.in_sync(1)
    assert DeploymentJournal(tmp_path / "j.json").entries == []


def test_an_unreadable_journal_is_kept_aside_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "deployments.json"
    path.write_text("{not json", encoding="utf-8")
    journal = DeploymentJournal(path)
    assert journal.entries == []
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("deployments.unreadable-")]
    assert len(kept) == 1 and kept[0].read_text(encoding="utf-8") == "{not json"


def test_two_processes_sharing_the_file_see_one_journal(tmp_path: Path) -> None:
    """Proxies A and B given the same --journal: one sequence, each other's changes at once."""
    path = tmp_path / "shared" / "deployments.json"
    proxy_a, proxy_b = DeploymentJournal(path), DeploymentJournal(path)
    first = proxy_a.append([("a.bpmn", b"<a/>")])
    second = proxy_b.append([("b.bpmn", b"<b/>")])
    assert (first.seq, second.seq) == (1, 2)  # never the same seq twice
    assert [e.seq for e in proxy_a.pending_for(1)] == [1, 2]
    assert proxy_b.in_sync(1) is False
    proxy_b.mark_delivered(first, 1, b"answer-from-1")
    proxy_a.mark_delivered(second, 1)
    assert proxy_b.in_sync(1) is True and proxy_a.in_sync(1) is True
    assert proxy_a.response_for(first, 1) == b"answer-from-1"  # delivered by B, answered to A
    proxy_a.drop(second)
    assert [e.seq for e in proxy_b.entries] == [1]
    assert proxy_b.append([("c.bpmn", b"<c/>")]).seq == 3  # a dropped seq is not reused


def test_delivery_to_a_cluster_is_exclusive_between_processes(tmp_path: Path) -> None:
    path = tmp_path / "deployments.json"
    proxy_a, proxy_b = DeploymentJournal(path), DeploymentJournal(path)

    async def scenario() -> list[str]:
        order: list[str] = []

        async def deliver(journal: DeploymentJournal, name: str, hold: float) -> None:
            async with journal.delivery_lock(1, timeout=5):
                order.append(f"{name} in")
                await asyncio.sleep(hold)
                order.append(f"{name} out")

        await asyncio.gather(deliver(proxy_a, "a", 0.2), deliver(proxy_b, "b", 0.0))
        async with proxy_a.delivery_lock(2, timeout=1):  # another cluster: not blocked
            with pytest.raises(TimeoutError):
                async with proxy_b.delivery_lock(2, timeout=0.05):
                    pass
        return order

    assert asyncio.run(scenario()) == ["a in", "a out", "b in", "b out"]
