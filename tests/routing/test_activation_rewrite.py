"""The fast key rewrite of ActivateJobs answers (routing.activation._globalized_response) against
the generic, table-driven rewrite (routing.keymap.globalize_response) on random jobs: same bytes,
same errors, and the cluster-local jobs (held again when a write fails) are never changed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyzeebe.proto import gateway_pb2 as pb

from routing.activation import _globalized_response
from routing.keymap import globalize_response
from routing.keys import InvalidKeyError

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
VALID_KEY = st.integers(min_value=1, max_value=(127 << 51) | ((1 << 51) - 1))
KEY = st.one_of(VALID_KEY, st.sampled_from([0, -1]), INT64)
TEXT = st.text(max_size=40)


@st.composite
def activated_jobs(draw: st.DrawFn, keys: st.SearchStrategy[int] = KEY) -> pb.ActivatedJob:
    return pb.ActivatedJob(
        key=draw(keys),
        type=draw(TEXT),
        processInstanceKey=draw(keys),
        bpmnProcessId=draw(TEXT),
        processDefinitionVersion=draw(st.integers(min_value=-(2**31), max_value=2**31 - 1)),
        processDefinitionKey=draw(keys),
        elementId=draw(TEXT),
        elementInstanceKey=draw(keys),
        customHeaders=draw(TEXT),
        worker=draw(TEXT),
        retries=draw(st.integers(min_value=-(2**31), max_value=2**31 - 1)),
        deadline=draw(INT64),
        variables=draw(TEXT),
        tenantId=draw(TEXT),
    )


def _slow(cluster_id: int, jobs: list[pb.ActivatedJob]) -> bytes:
    response = pb.ActivateJobsResponse()
    response.CopyFrom(pb.ActivateJobsResponse(jobs=jobs))
    return globalize_response(cluster_id, response).SerializeToString()


@settings(max_examples=300, deadline=None)
@given(cluster_id=st.integers(min_value=1, max_value=31), jobs=st.lists(activated_jobs(), max_size=8))
def test_fast_rewrite_matches_the_generic_one(cluster_id: int, jobs: list[pb.ActivatedJob]) -> None:
    before = [job.SerializeToString() for job in jobs]
    try:
        expected: bytes | type[InvalidKeyError] = _slow(cluster_id, jobs)
    except InvalidKeyError:
        expected = InvalidKeyError
    if expected is InvalidKeyError:
        with pytest.raises(InvalidKeyError):
            _globalized_response(cluster_id, jobs)
    else:
        assert _globalized_response(cluster_id, jobs).SerializeToString() == expected
    assert [job.SerializeToString() for job in jobs] == before


@settings(max_examples=100, deadline=None)
@given(
    cluster_id=st.integers(min_value=1, max_value=31),
    jobs=st.lists(activated_jobs(st.one_of(VALID_KEY, st.sampled_from([0, -1]))), min_size=1, max_size=8),
)
def test_valid_jobs_always_rewrite(cluster_id: int, jobs: list[pb.ActivatedJob]) -> None:
    response = _globalized_response(cluster_id, jobs)
    for local, rewritten in zip(jobs, response.jobs, strict=True):
        for name in ("key", "processInstanceKey", "processDefinitionKey", "elementInstanceKey"):
            value = getattr(local, name)
            expected = value if value in (0, -1) else (cluster_id << 58) | value
            assert getattr(rewritten, name) == expected
