"""Element behaviours: one module per BPMN element family, each registering a behaviour class
(activate / complete / terminate / on_child_completed) for its element types with
`registry.behavior`. They reach other elements only through `engine.processing.transitions`."""
