"""Command processors: one module per command family, each registering its processors with
`registry.processor(value type, intent...)`. A processor validates first (raising `Rejection`
before writing anything, so a rejected command changes no state), then writes its events.
Rejection texts are Zeebe's (reference §1.3)."""
