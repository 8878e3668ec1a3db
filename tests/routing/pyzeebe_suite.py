"""pyzeebe 4.7.0's own integration suite, run against Fleetflow instead of a Zeebe container.

Reusable: ``fetch_suite`` gets the suite (``pip download --no-deps --no-binary :all:
pyzeebe==4.7.0`` into a cache directory, checked against the sdist's SHA-256, or a local copy
named by ``PYZEEBE_SDIST``), ``run_suite`` runs it in a child pytest with pyzeebe's test files
unchanged, pointed at any gateway: an address (the engine, the proxy) or a routing channel
(``routing.connect`` over a cluster file). Each test's outcome comes back with its failure text.

pyzeebe's conftest starts Zeebe with testcontainers (Docker), which this machine does not have.
So the suite runs with pyzeebe's conftest rewritten in three places only: the testcontainers
imports and the ``zeebe_container`` fixture are dropped, ``grpc_channel`` builds the channel the
caller chose, and the two package-wide autouse deployments (test.bpmn, test.dmn) record a refusal
instead of erroring every test (so the tests that do not need that resource still run, and the
ones that do fail with the engine's own reason). Every other fixture and every test is pyzeebe's
text as shipped.

``engine_refusals(results)`` tells which failures come from a deployment the gateway refused
(an element or resource type the engine does not run yet), with the gateway's message.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from defusedxml import ElementTree

PYZEEBE_VERSION = "4.7.0"
SDIST_NAME = f"pyzeebe-{PYZEEBE_VERSION}.tar.gz"
SDIST_SHA256 = "767b94f28fbd2a6a6fba13351d7febab87c8539968355f786c581f4513d4bd93"
"""Of the PyPI sdist (checked on every use: the suite is third-party code run by our tests)."""

REPO_ROOT = Path(__file__).resolve().parents[2]

REFUSALS_FILE = "deploy-refusals.json"


class SuiteUnavailable(RuntimeError):
    """The sdist could not be obtained (PyPI unreachable...): callers skip with this reason."""


@dataclass(frozen=True)
class SuiteResult:
    name: str  # "run_process_test.py::test_run_process"
    outcome: str  # passed | failed | error | skipped
    message: str


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_suite(cache_dir: Path, timeout: float = 120.0) -> Path:
    """The verified sdist in ``cache_dir`` (downloaded with pip if not there yet)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached = cache_dir / SDIST_NAME
    local = os.environ.get("PYZEEBE_SDIST")
    if not cached.exists() and local and Path(local).is_file():
        shutil.copyfile(local, cached)
    if not cached.exists():
        try:
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--no-binary",
                    ":all:",
                    "--disable-pip-version-check",
                    f"pyzeebe=={PYZEEBE_VERSION}",
                    "-d",
                    str(cache_dir),
                ],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise SuiteUnavailable(
                f"pip download pyzeebe=={PYZEEBE_VERSION} took over {timeout:.0f} s"
            ) from None
        if result.returncode != 0 or not cached.exists():
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise SuiteUnavailable(
                f"cannot download pyzeebe=={PYZEEBE_VERSION} from PyPI: {' | '.join(tail)}"
            )
    digest = _sha256(cached)
    if digest != SDIST_SHA256:
        cached.unlink()
        raise SuiteUnavailable(f"{SDIST_NAME} has SHA-256 {digest}, expected {SDIST_SHA256}; deleted it")
    return cached


def sdist_member(cache_dir: Path, name: str) -> bytes:
    """One file of the verified sdist (e.g. ``tests/integration/test.dmn``); SuiteUnavailable
    when the sdist cannot be had."""
    with tarfile.open(fetch_suite(cache_dir)) as archive:
        member = archive.extractfile(f"pyzeebe-{PYZEEBE_VERSION}/{name}")
        if member is None:
            raise SuiteUnavailable(f"{SDIST_NAME} holds no file {name}")
        return member.read()


GRPC_CHANNEL_FIXTURE = """
@pytest.fixture(scope="package")
async def grpc_channel(anyio_backend):
    # Fleetflow: the gateway the outer test chose, instead of a Zeebe container.
    target = os.environ["FLEETFLOW_SUITE_TARGET"]
    if target.startswith("channel:"):
        import routing

        channel = routing.connect(clusters_file=target[len("channel:"):])
    else:
        channel = create_insecure_channel(grpc_address=target)
    yield channel
    await channel.close()
"""

RECORD_REFUSAL = """

def _fleetflow_record_refusal(resource, error):
    # Fleetflow: a refused package-wide deployment is recorded, not raised, so the tests that do
    # not need the resource still run (the outer test reads the file).
    path = os.environ["FLEETFLOW_SUITE_REFUSALS"]
    try:
        with open(path, encoding="utf-8") as handle:
            refusals = json.load(handle)
    except FileNotFoundError:
        refusals = {}
    cause = error.__cause__  # pyzeebe raises its error from the gRPC one, which has the text
    details = cause.details() if hasattr(cause, "details") else str(error)
    refusals[resource] = f"{type(error).__name__}: {details}"
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(refusals, handle)
"""


def _patched_conftest(original: str) -> str:
    """pyzeebe's conftest with the three changes the module docstring lists (each asserted, so a
    different sdist fails here rather than running something else)."""
    text = original
    for line in (
        "from testcontainers.core.container import DockerContainer\n",
        "from testcontainers.core.wait_strategies import LogMessageWaitStrategy\n",
    ):
        assert line in text, line
        text = text.replace(line, "")
    container_start = text.index('@pytest.fixture(scope="session")\ndef zeebe_container():')
    client_start = text.index('@pytest.fixture(scope="package")\ndef zeebe_client(')
    text = text[:container_start] + GRPC_CHANNEL_FIXTURE.lstrip("\n") + "\n\n" + text[client_start:]
    for resource, target in (("test.bpmn", "deploy_process"), ("test.dmn", "deploy_dmn")):
        head = f'@pytest.fixture(autouse=True, scope="package")\nasync def {target}(zeebe_client: ZeebeClient):\n'
        start = text.index(head) + len(head)
        end = text.index("\n\n\n", start)
        body = text[start:end]
        indented = "\n".join("    " + line if line else line for line in body.splitlines())
        wrapped = f"    try:\n{indented}\n    except Exception as error:\n        _fleetflow_record_refusal({resource!r}, error)\n"
        if "return response" in body:
            wrapped += "        return None\n"
        text = text[:start] + wrapped + text[end:]
    return "import json\n" + text + RECORD_REFUSAL


def prepare_suite(sdist: Path, work_dir: Path) -> Path:
    """Extract the suite's tests (not the sdist's pyzeebe package: the installed one is used)
    into ``work_dir`` with the patched conftest; returns the suite root."""
    root = work_dir / f"pyzeebe-{PYZEEBE_VERSION}-suite"
    if root.exists():
        shutil.rmtree(root)
    prefix = f"pyzeebe-{PYZEEBE_VERSION}/"
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            if (
                not member.name.startswith(prefix + "tests/integration/")
                and member.name != prefix + "tests/__init__.py"
            ):
                continue
            if not member.isfile():
                continue
            target = root / member.name[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            extracted = archive.extractfile(member)
            assert extracted is not None
            target.write_bytes(extracted.read())
    conftest = root / "tests" / "integration" / "conftest.py"
    conftest.write_text(_patched_conftest(conftest.read_text(encoding="utf-8")), encoding="utf-8")
    (root / "pytest.ini").write_text(
        "[pytest]\nmarkers =\n    e2e: end to end tests\naddopts = -p no:cacheprovider\n", encoding="utf-8"
    )
    return root


def run_suite(
    suite_root: Path, target: str, timeout: float = 300.0
) -> tuple[list[SuiteResult], dict[str, str], str]:
    """Run the suite against ``target`` (``HOST:PORT``, or ``channel:<clusters file>``); returns
    each test's result, the deployments the gateway refused, and pytest's output."""
    report = suite_root / "report.xml"
    refusals = suite_root / REFUSALS_FILE
    for stale in (report, refusals):
        stale.unlink(missing_ok=True)
    env = dict(os.environ)
    # The repo for `routing` (the channel); the suite's own `tests` package comes first (rootdir).
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(suite_root), str(REPO_ROOT), env.get("PYTHONPATH")])
    )
    env["FLEETFLOW_SUITE_TARGET"] = target
    env["FLEETFLOW_SUITE_REFUSALS"] = str(refusals)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/integration",
            "-q",
            f"--junitxml={report}",
            "-o",
            "junit_family=xunit1",
        ],
        cwd=suite_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = completed.stdout + completed.stderr
    if not report.exists():
        raise AssertionError(
            f"pyzeebe's suite produced no report (exit {completed.returncode}):\n{output[-4000:]}"
        )
    results: list[SuiteResult] = []
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        name = f"{Path(case.get('file') or case.get('classname', '').replace('.', '/')).name}::{case.get('name')}"
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                outcome = {"failure": "failed"}.get(tag, tag)
                message = (element.get("message") or "") + "\n" + (element.text or "")
                break
        results.append(SuiteResult(name=name, outcome=outcome, message=message.strip()))
    found = json.loads(refusals.read_text(encoding="utf-8")) if refusals.exists() else {}
    return results, found, output


NEEDS = {
    "test.bpmn": (
        "run_process_test.py",
        "cancel_process_test.py",
        "publish_message_test.py",
    ),
    "test.dmn": ("evaluate_decision_test.py",),
}
"""Which of the suite's files need which package-wide deployment (read from the suite's tests:
the process tests run process "test" from test.bpmn, publish_message starts it by its message
start event, the decision tests evaluate test.dmn's decision)."""


ENGINE_UNSUPPORTED = ("not supported by the Fleetflow embedded engine", "is not supported by this engine")
"""The engine's own words for an RPC, a BPMN element or a resource type it does not run yet
(engine/gateway.py, engine/bpmn/support.py, engine/broker.py)."""


def _unsupported(text: str) -> bool:
    return any(words in text for words in ENGINE_UNSUPPORTED)


def engine_refusals(results: list[SuiteResult], refusals: dict[str, str]) -> dict[str, str]:
    """Failed tests that failed because the engine does not support something yet -> the
    engine's own message: their resource was refused with the engine's "not supported" text,
    or the call itself was answered UNIMPLEMENTED with it."""
    blocked: dict[str, str] = {}
    for result in results:
        if result.outcome not in ("failed", "error"):
            continue
        reasons = []
        for resource, files in NEEDS.items():
            refusal = refusals.get(resource, "")
            if _unsupported(refusal) and result.name.split("::")[0] in files:
                reasons.append(f"{resource} refused by the engine: {refusal}")
        if "UNIMPLEMENTED" in result.message and _unsupported(result.message):
            line = next(x for x in result.message.splitlines() if _unsupported(x))
            reasons.append(f"the call is answered UNIMPLEMENTED by the engine: {line.strip()[:300]}")
        if reasons:
            blocked[result.name] = "; ".join(reasons)
    return blocked


CANCEL_TEST = "cancel_process_test.py::test_cancel_process"


def suite_outcome(result: SuiteResult, logs: Iterable[Iterable[dict[str, Any]]]) -> str:
    """A result's outcome, except for one race in pyzeebe's suite itself.

    Its cancel test cancels an instance of a one-task process while its package-wide worker for
    that task type runs: the worker may complete the job first (seen once under load), and Zeebe
    then answers NOT_FOUND, as the engine does. Such a failure counts as passed only when the
    engines' logs (`logs`, one record list per engine) prove the race: a PROCESS_INSTANCE CANCEL
    rejected NOT_FOUND for an instance of process "test" that completed earlier in the same log.
    """
    if result.name != CANCEL_TEST or result.outcome != "failed" or "NotFound" not in result.message:
        return result.outcome
    for records in logs:
        completed_at: dict[int, int] = {}
        for record in records:
            value = record.get("value", {})
            if (
                record["recordType"] == "EVENT"
                and record["valueType"] == "PROCESS_INSTANCE"
                and record["intent"] == "ELEMENT_COMPLETED"
                and value.get("bpmnElementType") == "PROCESS"
                and value.get("bpmnProcessId") == "test"
            ):
                completed_at[record["key"]] = record["position"]
            elif (
                record["recordType"] == "COMMAND_REJECTION"
                and record["valueType"] == "PROCESS_INSTANCE"
                and record["intent"] == "CANCEL"
                and record.get("rejectionType") == "NOT_FOUND"
                and completed_at.get(record["key"], record["position"]) < record["position"]
            ):
                return "passed"
    return result.outcome
