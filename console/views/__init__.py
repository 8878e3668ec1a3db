"""Console views: pages (reads) and actions (writes through the action services)."""

from console.views.pages import dashboard, healthz

__all__ = ["dashboard", "healthz"]
