"""What the two programs that serve Zeebe's gateway protocol share: the embedded engine
(``engine``) and the routing proxy (``routing``) are separate programs that never import each
other (pyproject.toml's import contracts), and both import this small library for the parts of a
gateway server that must behave identically on either:

- :mod:`gatewaykit.auth`: TLS server credentials and bearer-JWT checks on the gateway port;
- :mod:`gatewaykit.metrics_http`: the minimal ``GET /metrics`` endpoint for a Prometheus registry.

It knows neither program, nor Django.
"""
