"""How the proxy (and the routing client) reach a secured cluster: TLS and OAuth client credentials.

Per cluster, the same settings a Zeebe client takes (zbctl ``--certPath``, ``--clientId``,
``--clientSecret``, ``--authzUrl``, ``--audience``), named the same way everywhere:

* ``--cluster ID=HOST:PORT,tls=1,ca=FILE,server_name=NAME,token_url=URL,client_id=ID,
  client_secret_env=VAR|client_secret_file=FILE,audience=AUD[,scope=S]``
* the clusters file: ``{"id": 1, "address": ..., "security": {"tls": true, "ca": ..., ...}}``
* the ``Cluster`` table's ``gateway_security`` JSON field (same keys).

The secret itself is never in the configuration: only the name of an environment variable or
the path of a file holding it, read when a token is fetched (so a rotated file is picked up).

TLS never falls back to plaintext: a certificate that does not verify (wrong CA, a name that is
neither the address's host nor ``server_name``) fails every call and the health check says why.

Tokens come from the token URL by the client-credentials grant (form body, as Camunda Identity
and Keycloak take it), are cached per cluster, and are renewed *before* they expire: once a
token has lived half its life (at most 60 s before its end), the next call fetches a new one
while the calls that arrive meanwhile keep using the still-valid old one, so a refresh under
load fails no call.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import grpc

log = logging.getLogger(__name__)

TOKEN_FETCH_TIMEOUT = 10.0
REFRESH_AHEAD_MAX = 60.0


class SecurityConfigError(ValueError):
    """A cluster's security settings cannot work; the message names the setting."""


@dataclass(frozen=True)
class UpstreamSecurity:
    """TLS and OAuth settings for one cluster's gateway (all optional; empty = plaintext)."""

    tls: bool = False
    ca: str | None = None  # PEM CA bundle; None = the system's roots
    server_name: str | None = None  # the name the certificate must carry, if not the address's host
    token_url: str | None = None
    client_id: str | None = None
    client_secret_env: str | None = None
    client_secret_file: str | None = None
    audience: str | None = None
    scope: str | None = None

    def __post_init__(self) -> None:
        oauth = (self.token_url, self.client_id, self.client_secret_env, self.client_secret_file)
        if any(oauth):
            if not (self.token_url and self.client_id):
                raise SecurityConfigError("OAuth needs token_url and client_id")
            if bool(self.client_secret_env) == bool(self.client_secret_file):
                raise SecurityConfigError("OAuth needs exactly one of client_secret_env, client_secret_file")
            if not self.token_url.startswith("https://"):
                raise SecurityConfigError(
                    f"token_url {self.token_url!r} must be https:// (the secret travels)"
                )
            if not self.tls:
                # gRPC sends call credentials only over a secure channel: a token in plaintext would
                # be readable by anyone on the path, so refuse the combination outright.
                raise SecurityConfigError("OAuth needs tls=1 (tokens are never sent in plaintext)")
        if (self.ca or self.server_name) and not self.tls:
            raise SecurityConfigError("ca and server_name need tls=1")

    @property
    def oauth(self) -> bool:
        return self.token_url is not None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> UpstreamSecurity | None:
        """From the clusters file / table form; None or {} means plaintext."""
        if not data:
            return None
        if not isinstance(data, Mapping):
            raise SecurityConfigError(f"security must be an object, got {data!r}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise SecurityConfigError(
                f"unknown security setting(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})"
            )
        if "client_secret" in data:  # pragma: no cover (caught as unknown above; kept for the message)
            raise SecurityConfigError(
                "client_secret is never stored: use client_secret_env or client_secret_file"
            )
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key == "tls":
                values[key] = _truthy(value)
            elif value is None or value == "":
                continue
            elif not isinstance(value, str):
                raise SecurityConfigError(f"security setting {key} must be a string, got {value!r}")
            else:
                values[key] = value
        return cls(**values)

    def to_mapping(self) -> dict[str, Any]:
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) not in (None, False)
        }

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """TLS credentials (with the OAuth call credentials composed in, if configured)."""
        roots = None
        if self.ca:
            try:
                roots = Path(self.ca).read_bytes()
            except OSError as error:
                raise SecurityConfigError(f"ca {self.ca}: {error.strerror or error}") from None
        credentials = grpc.ssl_channel_credentials(root_certificates=roots)
        if self.oauth:
            credentials = grpc.composite_channel_credentials(
                credentials, grpc.metadata_call_credentials(token_plugin(self), name="fleetflow-oauth")
            )
        return credentials

    def channel_options(self) -> list[tuple[str, int | str]]:
        if self.server_name:
            return [("grpc.ssl_target_name_override", self.server_name)]
        return []


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if str(value).strip().lower() in {"0", "false", "no", "off", ""}:
        return False
    raise SecurityConfigError(f"tls must be 1/0 or true/false, got {value!r}")


class TokenError(Exception):
    """The token endpoint did not give a token; the message says why (never the secret)."""


class ClientCredentialsTokens:
    """Access tokens for one client, cached and renewed before they expire. Thread-safe."""

    def __init__(self, security: UpstreamSecurity) -> None:
        assert security.token_url and security.client_id
        self.security = security
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0  # monotonic
        self._refresh_at = 0.0
        self.fetched = 0

    def _secret(self) -> str:
        if self.security.client_secret_env:
            secret = os.environ.get(self.security.client_secret_env)
            if not secret:
                raise TokenError(
                    f"client secret: environment variable {self.security.client_secret_env} is not set"
                )
            return secret
        assert self.security.client_secret_file
        try:
            return Path(self.security.client_secret_file).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise TokenError(
                f"client secret file {self.security.client_secret_file}: {error.strerror}"
            ) from None

    def _fetch(self) -> None:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.security.client_id or "",
            "client_secret": self._secret(),
        }
        if self.security.audience:
            form["audience"] = self.security.audience
        if self.security.scope:
            form["scope"] = self.security.scope
        url = self.security.token_url or ""
        request = urllib.request.Request(  # noqa: S310 (https enforced in UpstreamSecurity)
            url,
            data=urllib.parse.urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=TOKEN_FETCH_TIMEOUT) as response:  # noqa: S310
                body = json.loads(response.read(1_000_000))
        except urllib.error.HTTPError as error:
            raise TokenError(f"token endpoint {url} answered HTTP {error.code}") from None
        except (OSError, ValueError) as error:
            raise TokenError(f"token endpoint {url}: {error}") from None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise TokenError(f"token endpoint {url} gave no access_token")
        lifetime = float(body.get("expires_in") or 300)
        self._token = token
        self._expires_at = started + lifetime
        self._refresh_at = started + max(lifetime / 2, lifetime - REFRESH_AHEAD_MAX)
        self.fetched += 1

    def token(self) -> str:
        now = time.monotonic()
        token = self._token
        if token is not None and now < self._refresh_at:
            return token
        if token is not None and now < self._expires_at - 1.0:
            # Due for renewal but still valid: one caller renews, the others go on with this one.
            if not self._lock.acquire(blocking=False):
                return token
            try:
                if time.monotonic() >= self._refresh_at:
                    try:
                        self._fetch()
                    except TokenError as error:
                        log.warning(
                            "token renewal failed, using the current token until it expires: %s", error
                        )
                return self._token or token
            finally:
                self._lock.release()
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at - 1.0:
                self._fetch()
            assert self._token is not None
            return self._token


class _TokenPlugin(grpc.AuthMetadataPlugin):
    def __init__(self, tokens: ClientCredentialsTokens) -> None:
        self.tokens = tokens

    def __call__(self, context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback) -> None:
        try:
            token = self.tokens.token()
        except TokenError as error:
            callback((), error)
            return
        callback((("authorization", f"Bearer {token}"),), None)


_token_caches: dict[UpstreamSecurity, ClientCredentialsTokens] = {}
_token_caches_lock = threading.Lock()


def tokens_for(security: UpstreamSecurity) -> ClientCredentialsTokens:
    """The process's token cache for these settings (shared by every channel using them)."""
    with _token_caches_lock:
        tokens = _token_caches.get(security)
        if tokens is None:
            tokens = _token_caches[security] = ClientCredentialsTokens(security)
        return tokens


def token_plugin(security: UpstreamSecurity) -> grpc.AuthMetadataPlugin:
    return _TokenPlugin(tokens_for(security))


SPEC_KEYS = tuple(f.name for f in fields(UpstreamSecurity))


def explain_failure(security: UpstreamSecurity | None, address: str, message: str) -> str:
    """Add what to check to a gRPC failure that comes from TLS or OAuth (for the health reason)."""
    if security is None or not security.tls:
        return message
    lowered = message.lower()
    host = address.rpartition(":")[0]
    if "hostname verification" in lowered or "peer name" in lowered:
        expected = security.server_name or host
        return (
            f"{message} [TLS: the gateway's certificate does not name {expected!r}; "
            "set server_name= to a name it carries]"
        )
    if "certificate verify failed" in lowered or "handshake" in lowered or "ssl" in lowered:
        return f"{message} [TLS: the gateway's certificate does not verify against ca={security.ca or 'system roots'}]"
    if "getting metadata from plugin failed" in lowered:
        return f"{message} [OAuth: no token from {security.token_url} for client {security.client_id}]"
    return message
