"""zeebe-node (the Node.js client) through the TLS proxy that requires tokens, in front of two TLS
engines that require tokens: its self-managed OAuth settings (oAuth {url, audience, clientId,
clientSecret, customRootCert, cacheOnDisk false}) and customSSL.rootCerts for the gateway's CA."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from engine.log import LogReader, partition_ids
from routing.keys import from_global
from tests.engine.helpers import one_task_process
from tests.security import test_proxy_security as proxy_security
from tests.security.conftest import AUDIENCE, CLIENT_ID, CLIENT_SECRET
from tests.security.oauth_server import TokenServer
from tests.security.test_proxy_security import Fleet, wait_up
from tests.zeebe_node import require_zeebe_node, run_node

# the secured fleet (TLS proxy requiring tokens, two TLS engines requiring tokens) of the proxy tests
fleet = proxy_security.fleet
short_tokens = proxy_security.short_tokens

SCRIPT = r"""
const fs = require("fs");
const { ZBClient } = require("zeebe-node");
const cfg = JSON.parse(process.env.FLOW_CONFIG);
const ca = fs.readFileSync(cfg.ca);
const options = { useTLS: true, customSSL: { rootCerts: ca }, retry: false, loglevel: "NONE" };
if (cfg.oauth) {
  options.oAuth = {
    url: cfg.oauth.url,
    audience: cfg.oauth.audience,
    clientId: cfg.oauth.clientId,
    clientSecret: cfg.oauth.clientSecret,
    customRootCert: ca,
    cacheOnDisk: false,
  };
}
const zbc = new ZBClient(cfg.address, options);
const out = (value) => process.stdout.write(JSON.stringify(value) + "\n");

async function flow() {
  const deployed = await zbc.deployResource({ processFilename: cfg.bpmn });
  const handled = [];
  const worker = zbc.createWorker({
    taskType: cfg.jobType,
    taskHandler: (job) => {
      handled.push(job.processInstanceKey);
      return job.complete({ doubled: job.variables.n * 2 });
    },
  });
  const result = await zbc.createProcessInstanceWithResult({
    bpmnProcessId: cfg.processId,
    variables: { n: 21 },
    requestTimeout: 20000,
  });
  await worker.close();
  out({
    deployedProcessKey: String(deployed.deployments[0].process.processDefinitionKey),
    processInstanceKey: String(result.processInstanceKey),
    variables: result.variables,
    handled: handled.map(String),
  });
}

async function noCredentials() {
  try {
    await zbc.topology();
    out({ ok: true });
  } catch (error) {
    out({ ok: false, code: error.code, message: String(error.message) });
    process.exitCode = 3;
  }
}

(cfg.mode === "flow" ? flow() : noCredentials())
  .catch((error) => {
    process.stderr.write(String(error && error.stack ? error.stack : error) + "\n");
    process.exitCode = 1;
  })
  .finally(() => zbc.close());
"""


def node_client(tmp_path: Path, config: dict[str, Any]) -> tuple[int, list[dict[str, Any]], str]:
    script = tmp_path / "zeebe_node_client.js"
    script.write_text(SCRIPT)
    # HOME in tmp_path: nothing of the user's (~/.camunda token cache) is read or written
    done = run_node(script, {"FLOW_CONFIG": json.dumps(config), "HOME": str(tmp_path)})
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return done.returncode, lines, done.stderr


def engine_records(fleet: Fleet, cluster_id: int) -> list[dict[str, Any]]:
    engine = fleet.engines[cluster_id - 1]
    data_dir = engine.args[engine.args.index("--data-dir") + 1]
    found: list[dict[str, Any]] = []
    for partition_id in partition_ids(data_dir):
        found.extend(LogReader(data_dir, partition_id).iter_records(1))
    return found


def test_zeebe_node_flow_through_the_tls_proxy(
    fleet: Fleet, token_server: TokenServer, tmp_path: Path
) -> None:
    require_zeebe_node()
    wait_up(fleet, {"1", "2"})
    bpmn = tmp_path / "zn-proxy.bpmn"
    bpmn.write_bytes(one_task_process("zn-proxy", "zn-proxy-work"))
    fetches_before = sum(1 for r in token_server.requests if r.get("client_id") == CLIENT_ID)
    code, lines, stderr = node_client(
        tmp_path,
        {
            "mode": "flow",
            "address": fleet.proxy.address,
            "ca": str(fleet.proxy.ca),
            "bpmn": str(bpmn),
            "processId": "zn-proxy",
            "jobType": "zn-proxy-work",
            "oauth": {
                "url": token_server.token_url,
                "audience": AUDIENCE,
                "clientId": CLIENT_ID,
                "clientSecret": CLIENT_SECRET,
            },
        },
    )
    assert code == 0, (code, lines, stderr, fleet.proxy.log()[-3000:])
    [outcome] = lines
    print("zeebe-node flow:", outcome)
    assert outcome["variables"] == {"n": 21, "doubled": 42}, outcome
    assert outcome["handled"] == [outcome["processInstanceKey"]], outcome
    # the client fetched its token from our endpoint (no cached or ambient credentials)
    assert sum(1 for r in token_server.requests if r.get("client_id") == CLIENT_ID) > fetches_before
    # the engine that owns the instance (by its global key) logged it completed
    cluster_id, local_key = from_global(int(outcome["processInstanceKey"]))
    deadline = time.monotonic() + 10
    completed: set[int] = set()
    while time.monotonic() < deadline:
        completed = {
            r["key"]
            for r in engine_records(fleet, cluster_id)
            if r.get("valueType") == "PROCESS_INSTANCE"
            and r.get("intent") == "ELEMENT_COMPLETED"
            and r["value"].get("bpmnElementType") == "PROCESS"
            and r["value"].get("bpmnProcessId") == "zn-proxy"
        }
        if local_key in completed:
            break
        time.sleep(0.1)
    assert local_key in completed, (cluster_id, local_key, completed)


def test_zeebe_node_without_credentials_is_unauthenticated(fleet: Fleet, tmp_path: Path) -> None:
    require_zeebe_node()
    wait_up(fleet, {"1", "2"})
    code, lines, stderr = node_client(
        tmp_path, {"mode": "noauth", "address": fleet.proxy.address, "ca": str(fleet.proxy.ca)}
    )
    print("zeebe-node without credentials:", code, lines)
    assert code == 3, (code, lines, stderr)
    [outcome] = lines
    assert outcome["ok"] is False
    assert outcome["code"] == 16, outcome  # grpc.status.UNAUTHENTICATED
    assert "UNAUTHENTICATED" in outcome["message"] and "bearer token" in outcome["message"], outcome
    # the proxy refused it itself (gatewaykit/auth.py logs each refusal)
    assert "refused /gateway_protocol.Gateway/Topology: Expected bearer token" in fleet.proxy.log()
