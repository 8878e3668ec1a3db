"""The processing engine of a partition, built like Zeebe's (engine/processing/README.md):
command processors per command family, element behaviours per BPMN element family, one
state-transition module between them, shared behaviours and typed state."""
