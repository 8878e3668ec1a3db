"""Catch-event trigger kinds: one module per event type (errors, timers; messages and signals
to come), each registered with `registry.trigger_kind` and fed to `subscriptions.trigger`."""
