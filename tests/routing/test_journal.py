"""The deployment journal (routing/journal.py): order, per-cluster delivery, persistence."""

from pathlib import Path

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
