"""A local OAuth 2 token endpoint (client credentials) issuing JWTs signed with a test key.

Serves on 127.0.0.1: ``POST /oauth/token`` (form or JSON body, or HTTP basic client auth), and
``/.well-known/openid-configuration`` + ``/jwks.json`` so an engine can be given ``--oauth-issuer``.
Counts the tokens it issued (``issued``) so tests can see a refresh happen.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.security.pki import ServerCert, SigningKey


class TokenServer:
    def __init__(
        self, key: SigningKey, clients: dict[str, str], *, tls: ServerCert, lifetime: int = 300
    ) -> None:
        self.key = key
        self.clients = dict(clients)
        self.lifetime = lifetime
        self.issued = 0
        self.refused = 0
        self.requests: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    self._json(
                        200,
                        {
                            "issuer": server.issuer,
                            "jwks_uri": f"{server.issuer}/jwks.json",
                            "token_endpoint": server.token_url,
                        },
                    )
                elif self.path == "/jwks.json":
                    self._json(200, server.key.jwks())
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(min(length, 65536)).decode()
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    params = {k: str(v) for k, v in json.loads(raw or "{}").items()}
                else:
                    params = {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
                basic = self.headers.get("Authorization", "")
                if basic.lower().startswith("basic "):
                    user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
                    params.setdefault("client_id", urllib.parse.unquote_plus(user))
                    params.setdefault("client_secret", urllib.parse.unquote_plus(password))
                server.requests.append({**params, "at": str(time.monotonic())})
                client_id = params.get("client_id", "")
                if server.clients.get(client_id) is None or server.clients[client_id] != params.get(
                    "client_secret"
                ):
                    server.refused += 1
                    self._json(401, {"error": "invalid_client"})
                    return
                server.issued += 1
                now = int(time.time())
                token = server.key.sign(
                    {
                        "iss": server.issuer,
                        "sub": client_id,
                        "aud": params.get("audience", ""),
                        "iat": now,
                        "exp": now + server.lifetime,
                        "n": server.issued,
                    }
                )
                self._json(
                    200, {"access_token": token, "token_type": "Bearer", "expires_in": server.lifetime}
                )

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # HTTPS like any real issuer (OAuth clients refuse plain http): clients trust the test CA
        # through SSL_CERT_FILE / REQUESTS_CA_BUNDLE.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.cert, tls.key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.issuer = f"https://127.0.0.1:{self.port}"
        self.token_url = f"{self.issuer}/oauth/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> TokenServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
