"""Deploy and start without a cluster (issue 19): roles, input refused naming the field, and a
clear refusal when no gateway proxy is configured. test_part2_end_to_end.py runs them for real."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client

from processes.operations import services
from processes.operations.services import OperationRejected
from processes.roles import Role, RoleRequired
from tests.operations import factories as f

pytestmark = pytest.mark.django_db


def test_roles_and_input(settings):
    settings.FLEETFLOW_GATEWAY_PROXY_ADDRESS = ""
    for actor in (AnonymousUser(), f.user("vera", Role.VIEWER)):
        with pytest.raises(RoleRequired):
            services.deploy_resource(actor=actor, name="a.bpmn", content=b"<x/>")
        with pytest.raises(RoleRequired):
            services.start_instance(actor=actor, bpmn_process_id="a", variables={})
    otto = f.user("otto", Role.OPERATOR)
    cases = [
        (
            lambda: services.deploy_resource(actor=otto, name="a.txt", content=b"<x/>"),
            "name",
            "must end with",
        ),
        (lambda: services.deploy_resource(actor=otto, name="a.bpmn", content=b"  "), "content", "empty"),
        (
            lambda: services.deploy_resource(actor=otto, name="a.bpmn", content=b"x" * (4 * 1024 * 1024 + 1)),
            "content",
            "at most",
        ),
        (
            lambda: services.start_instance(actor=otto, bpmn_process_id=" ", variables={}),
            "bpmn_process_id",
            "empty",
        ),
        (
            lambda: services.start_instance(actor=otto, bpmn_process_id="a", version=0, variables={}),
            "version",
            "-1",
        ),
        (
            lambda: services.start_instance(actor=otto, bpmn_process_id="a", variables=[]),
            "variables",
            "JSON object",
        ),
        (
            lambda: services.start_instance(actor=otto, bpmn_process_id="a", variables={}),
            None,
            "No gateway proxy",
        ),
    ]
    for call, field, match in cases:
        with pytest.raises(OperationRejected, match=match) as info:
            call()
        assert info.value.field == field


def test_api_and_console_refuse_viewers_and_explain_a_missing_proxy(settings):
    settings.FLEETFLOW_GATEWAY_PROXY_ADDRESS = ""
    viewer, operator = Client(), Client()
    viewer.force_login(f.user("vera", Role.VIEWER))
    operator.force_login(f.user("otto", Role.OPERATOR))
    body = {"bpmn_process_id": "a"}
    assert (
        viewer.post("/api/v1/process-instances/start/", body, content_type="application/json").status_code
        == 403
    )
    assert (
        viewer.post("/api/v1/process-definitions/deploy/", {}, content_type="application/json").status_code
        == 403
    )
    response = operator.post("/api/v1/process-instances/start/", body, content_type="application/json")
    assert response.status_code == 400 and "No gateway proxy" in response.content.decode()
    page = operator.post("/deploy/", {"what": "start", "bpmn_process_id": "a", "variables": "{}"})
    assert page.status_code == 422 and "No gateway proxy" in page.content.decode()
