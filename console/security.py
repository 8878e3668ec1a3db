"""Content Security Policy for the console (CONVENTIONS §10: no inline script).

Scripts only from this origin (the vendored files under static/), so an injected ``<script>`` or an
``onclick`` attribute in, say, an incident message rendered on a page does not run. Styles allow
inline attributes because bpmn-js, uPlot and htmx set ``style`` attributes on the elements they
draw; style attributes cannot run code. ``connect-src 'self'`` covers the page's websocket (same
origin, ws: or wss:).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


API_PREFIX = "/api/"


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # The API (JSON, and its schema viewer, which loads its own scripts) is not a console page.
        if not request.path.startswith(API_PREFIX):
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
