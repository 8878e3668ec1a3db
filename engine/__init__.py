"""Fleetflow's embedded Zeebe-compatible engine (no Django imports).

Run one cluster: `python -m engine --port PORT --partitions N --data-dir DIR [--host HOST]`.

Modules:
- `log`: the per-partition append-only record log (the source of truth) and its stable
  reader API `partition_ids(data_dir)` / `LogReader(data_dir, partition_id).read(...)`;
- `records`: builders for Zeebe's record JSON (reference §3.3-3.4);
- `processing/`: command processors, element behaviours, the state-transition and catch-event
  behaviours, typed state and its appliers (Zeebe's engine layout; see its README.md);
- `partition`: command execution, group commit (write + fsync), snapshots, recovery;
- `broker`: partitions, deployment distribution, routing, job activation, the timer loop;
- `gateway`: the gateway gRPC servicer; `server`: grpc.aio server + health service.
- `bpmn/` (BPMN parser and model) and `feel/` (FEEL evaluator) are separate packages.
"""
