"""The console's modification plan dialog (issue 19): the pickers come from the diagram and the
active steps, Preview says what will happen and writes nothing, a refused plan shows Zeebe's
reason and writes nothing, Apply requests one operation."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from processes.operations.models import AuditEntry, Operation
from processes.roles import Role
from tests.operations import factories as f
from tests.operations.test_part2_modify import ZEEBE_BPMN

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> dict[str, Any]:
    definition = f.definition(bpmn_xml=ZEEBE_BPMN)
    root = f.instance(process_definition=definition)
    return {"root": root, "step": f.element(root, "diagnose")}


def logged_in(role: Role) -> Client:
    client = Client()
    client.force_login(f.user(f"u-{role}", role))
    return client


def nothing_written() -> bool:
    return not Operation.objects.exists() and not AuditEntry.objects.filter(operation__isnull=False).exists()


def test_dialog_preview_refusal_and_apply(world: dict[str, Any]) -> None:
    url = f"/instances/{world['root'].key}/modify"
    step = world["step"]
    assert logged_in(Role.VIEWER).get(url).status_code == 403
    client = logged_in(Role.OPERATOR)
    html = client.get(url).content.decode()
    # Pickers: what may be activated (no start event, boundary event or subprocess itself), the active steps.
    assert '<option value="repair"' in html and '<option value="inner"' in html
    assert '<option value="start"' not in html and '<option value="timeout"' not in html
    assert f'name="terminate" value="{step.key}"' in html
    assert "Apply this plan" not in html  # only after a preview

    plan = {"terminate": [str(step.key)], "activate-0-element": "repair", "activate-0-variables": '{"a": 1}'}
    preview = client.post(url, plan)
    assert preview.status_code == 200
    text = preview.content.decode()
    assert (
        "Add a token before &#x27;repair&#x27;" in text and "Cancel the token at &#x27;diagnose&#x27;" in text
    )
    assert "Apply this plan" in text and "checked" in text
    assert nothing_written()

    refused = client.post(url, {"activate-0-element": "start"})  # forged: not in the picker
    assert refused.status_code == 422
    assert (
        "The activation of elements with type &#x27;START_EVENT&#x27; is not supported"
        in refused.content.decode()
    )
    bad_json = client.post(url, {"activate-0-element": "repair", "activate-0-variables": "{nope"})
    assert bad_json.status_code == 422 and "not valid JSON" in bad_json.content.decode()
    assert nothing_written()

    applied = client.post(url, {**plan, "apply": "1"})
    assert applied.status_code == 200
    operation = Operation.objects.get()
    assert operation.action == "modify" and operation.parameters["terminate"] == [step.key]
    assert operation.parameters["activate"] == [
        {"element_id": "repair", "ancestor_key": None, "variables": {"a": 1}}
    ]


def test_the_instance_page_offers_modify_to_operators_only(world: dict[str, Any]) -> None:
    page = f"/instances/{world['root'].key}/"
    assert "Modify…" in logged_in(Role.OPERATOR).get(page).content.decode()
    assert "Modify…" not in logged_in(Role.VIEWER).get(page).content.decode()


def test_batch_move_dialog(world: dict[str, Any]) -> None:
    from processes.operations.models import BatchOperation

    client = logged_in(Role.OPERATOR)
    first = client.get("/batches/new", {"action": "modify", "bpmn_process_id": "linear"})
    assert first.status_code == 200
    assert (
        'name="source_element_id"' in first.content.decode()
        and "data-dry-run-count" not in first.content.decode()
    )
    move = {
        "action": "modify",
        "bpmn_process_id": "linear",
        "source_element_id": "diagnose",
        "target_element_id": "repair",
    }
    dry = client.get("/batches/new", move)
    assert dry.status_code == 200 and "<strong data-dry-run-count>1</strong>" in dry.content.decode()
    refused = client.post("/batches/new", {**move, "target_element_id": "start"})
    assert refused.status_code == 422
    assert (
        "The activation of elements with type &#x27;START_EVENT&#x27; is not supported"
        in refused.content.decode()
    )
    assert not BatchOperation.objects.exists()
    started = client.post("/batches/new", move)
    assert started.status_code == 200
    batch = BatchOperation.objects.get()
    assert batch.action == "modify" and batch.filter == {"bpmn_process_id": "linear"}
    assert batch.parameters == {"source_element_id": "diagnose", "target_element_id": "repair"}
