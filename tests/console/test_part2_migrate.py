"""The console's migration mapping editor and batch migration dialog (issue 19): elements matched by
id and type, any row can be changed, a refusal is shown on its row before anything is sent, Migrate
requests one operation; the batch dry run lists what would be migrated and what refused, and why,
writing nothing; Start starts the batch. Viewers get 403 and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from processes.operations.models import AuditEntry, BatchOperation, Operation
from processes.roles import Role
from tests.operations import factories as f
from tests.operations import test_part2_migrate as migrate_tests
from tests.operations.test_part2_migrate import SELECTION

# The query-model rows of the service tests: versions 1 and 2 of 'linear', instances on version 1.
world = migrate_tests.world
many = migrate_tests.many

pytestmark = pytest.mark.django_db


def logged_in(role: Role) -> Client:
    client = Client()
    client.force_login(f.user(f"u-{role}", role))
    return client


def nothing_written() -> bool:
    return (
        not Operation.objects.exists()
        and not BatchOperation.objects.exists()
        and not AuditEntry.objects.filter(operation__isnull=False).exists()
    )


def test_mapping_editor_auto_match_refusal_on_the_row_and_migrate(world: dict[str, Any]) -> None:
    url = f"/instances/{world['root'].key}/migrate"
    viewer = logged_in(Role.VIEWER)
    assert viewer.get(url).status_code == 403
    assert viewer.post(url, {"target_version": "2", "shown_version": "2", "apply": "1"}).status_code == 403
    client = logged_in(Role.OPERATOR)
    html = client.get(url).content.decode()
    # Left: version 1's elements; right: version 2's, matched by id and type.
    assert 'name="map-diagnose"' in html and 'name="map-guarded"' in html
    assert '<option value="diagnose" selected>' in html
    assert 'name="map-repair"' in html and "different type" not in html  # repair: no same-type match
    assert "moves 1 token to diagnose" in html
    assert "data-confirm-button" in html  # the automatic plan is accepted
    # The operator maps the token's element to a user task: the row shows Zeebe's refusal.
    refused = client.post(url, {"target_version": "2", "shown_version": "2", "map-diagnose": "repair"})
    text = refused.content.decode()
    assert "data-row-refusal" in text
    assert (
        "is mapped to an element with id &#x27;repair&#x27; and different type &#x27;USER_TASK&#x27;" in text
    )
    assert "The engine would refuse this plan" in text and "data-confirm-button" not in text
    # Unmapped: refused too. Pressing Migrate on a refused plan writes nothing.
    unmapped = client.post(url, {"target_version": "2", "shown_version": "2", "apply": "1"})
    assert (
        "no mapping instruction defined for active element with id &#x27;diagnose&#x27;"
        in unmapped.content.decode()
    )
    assert nothing_written()
    # A mapping to another element of the same type.
    moved = client.post(
        url, {"target_version": "2", "shown_version": "2", "map-diagnose": "check", "map-end": "end"}
    )
    assert "moves to &#x27;check&#x27;" in moved.content.decode()
    applied = client.post(
        url,
        {
            "target_version": "2",
            "shown_version": "2",
            "map-diagnose": "check",
            "map-end": "end",
            "apply": "1",
        },
    )
    assert applied.status_code == 200
    assert 'data-operation-state="queued"' in applied.content.decode()
    operation = Operation.objects.get()
    assert operation.action == "migrate" and sorted(operation.parameters["mapping"]) == [
        ["diagnose", "check"],
        ["end", "end"],
    ]


def test_instance_without_another_version_says_so() -> None:
    root = f.instance(process_definition=f.definition())
    html = logged_in(Role.OPERATOR).get(f"/instances/{root.key}/migrate").content.decode()
    assert "has no other version on this cluster" in html


def test_batch_dialog_dry_run_lists_refusals_and_starts(many: dict[str, Any]) -> None:
    url = "/batches/migrate"
    assert logged_in(Role.VIEWER).get(url, SELECTION).status_code == 403
    client = logged_in(Role.OPERATOR)
    assert "Filter the list by process and version first" in client.get(url).content.decode()
    html = client.get(url, SELECTION).content.decode()
    assert 'name="map-diagnose"' in html and "Start batch" not in html
    form = {
        **SELECTION,
        "target_version": "2",
        "shown_version": "2",
        "map-diagnose": "diagnose",
        "map-repair": "check",
    }
    dry = client.post(url, {**form, "do": "dry-run"}).content.decode()
    assert "<strong data-would-migrate>3</strong>" in dry and "<strong data-would-refuse>2</strong>" in dry
    assert "has an incident" in dry and "child process instance" in dry
    assert "Start batch: migrate 3" in dry
    assert nothing_written()
    started = client.post(url, {**form, "do": "start"})
    assert started.status_code == 200, started.content
    batch = BatchOperation.objects.get()
    assert batch.action == "migrate" and batch.parameters["target_version"] == 2
    assert ["repair", "check"] in batch.parameters["mapping"]


def test_the_buttons_are_on_the_pages(world: dict[str, Any]) -> None:
    client = logged_in(Role.OPERATOR)
    assert "Migrate…" in client.get(f"/instances/{world['root'].key}/").content.decode()
    listed = client.get("/instances/", {"bpmn_process_id": "linear", "version": "1"}).content.decode()
    assert "Migrate all to another version…" in listed
    assert "Migrate all" not in client.get("/instances/", {"bpmn_process_id": "linear"}).content.decode()
