"""Fleetflow's embedded Zeebe-compatible engine (no Django imports).

Run one cluster: `python -m engine --port PORT --partitions N --data-dir DIR [--host HOST]`.

Modules:
- `log`: the per-partition append-only record log (the source of truth) and its stable
  reader API `partition_ids(data_dir)` / `LogReader(data_dir, partition_id).read(...)`;
- `records`: builders for Zeebe's record JSON (reference §3.3-3.4);
- `state`: partition state and the event appliers (the only code that mutates state);
- `execution`: BPMN element lifecycle, variables, incidents, error propagation;
- `commands`: client command processing and Zeebe rejection texts;
- `partition`: command execution, group commit (write + fsync), snapshots, recovery;
- `broker`: partitions, deployment distribution, routing, job activation, timers;
- `gateway`: the gateway gRPC servicer; `server`: grpc.aio server + health service.
- `bpmn/` (BPMN parser and model) and `feel/` (FEEL evaluator) are separate packages.
"""
