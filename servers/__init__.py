"""The server inventory and the per-server full-link view (every process that touched a server)."""
