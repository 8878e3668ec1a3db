"""The jobs table of the instance page offers the by-hand job actions (issue 19) to operators, on
jobs Zeebe would accept them for (activatable or activated), never to viewers."""

from __future__ import annotations

import pytest
from django.test import Client

from processes.roles import Role
from tests.operations import factories as f

pytestmark = pytest.mark.django_db


def test_job_buttons(settings) -> None:  # type: ignore[no-untyped-def]
    root = f.instance(process_definition=f.definition())
    open_job = f.job(f.element(root, "diagnose"), state="activated")
    failed_job = f.job(f.element(root, "repair"), state="failed", retries=0)
    operator, viewer = Client(), Client()
    operator.force_login(f.user("otto", Role.OPERATOR))
    viewer.force_login(f.user("vera", Role.VIEWER))
    html = operator.get(f"/instances/{root.key}/").content.decode()
    for name in ("complete-job", "fail-job", "throw-error"):
        assert f"/actions/{name}/{open_job.key}/" in html
        assert f"/actions/{name}/{failed_job.key}/" not in html  # waits on its incident instead
    assert "/actions/complete-job/" not in viewer.get(f"/instances/{root.key}/").content.decode()
