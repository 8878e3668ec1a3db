"""Gateway security: TLS server credentials and bearer-JWT checking, as Zeebe's gateway does it.

Served by both programs that speak Zeebe's gateway protocol: the embedded engine
(``python -m engine``) and the routing proxy (``python -m routing``), each with the same options.
``--tls-cert FILE --tls-key FILE`` serve the gateway over TLS (:func:`server_credentials`).
``--oauth-audience NAME`` with ``--oauth-jwks FILE`` and/or ``--oauth-issuer URL`` make every
gateway call carry ``authorization: Bearer <JWT>``: the signature must verify against a key of
the JWKS (the file, or the issuer's ``jwks_uri`` from ``URL/.well-known/openid-configuration``),
``exp`` must lie in the future, ``aud`` must name the audience and, with an issuer, ``iss`` must be
it. Otherwise the call ends with UNAUTHENTICATED before any handler runs (the Zeebe gateway's
code; its messages too). The gRPC health service stays open: it says only SERVING or not, and
load balancers and the proxy's health checker probe it without credentials.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import jwt

log = logging.getLogger(__name__)

# Services callable without a token: health answers only SERVING/NOT_SERVING.
OPEN_SERVICES = ("/grpc.health.v1.Health/",)
# Asymmetric algorithms only: an HS256 token "signed" with a public key must not pass.
ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"]
MISSING_TOKEN = "Expected bearer token at header with key [authorization], but found nothing"  # noqa: S105 (a message)
INVALID_TOKEN = "Expected a valid token, see cause for details"  # noqa: S105 (a message)
# A kid not in the cached JWKS triggers a fetch at most this often (key rotation, not a DoS lever).
JWKS_REFETCH_SECONDS = 10.0
JWKS_FETCH_TIMEOUT = 5.0


class AuthConfigError(ValueError):
    """Security options that cannot work (unreadable file, no audience, bad JWKS)."""


class TokenRejected(Exception):
    """The bearer token is not acceptable; the message says why (sent to the client)."""


def read_file(path: str | Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise AuthConfigError(f"{what} {path}: {error.strerror or error}") from None


def server_credentials(cert_file: str | Path, key_file: str | Path) -> grpc.ServerCredentials:
    """TLS credentials from a PEM certificate chain and its PEM private key."""
    cert = read_file(cert_file, "--tls-cert")
    key = read_file(key_file, "--tls-key")
    if b"-----BEGIN" not in cert or b"CERTIFICATE" not in cert:
        raise AuthConfigError(f"--tls-cert {cert_file}: not a PEM certificate")
    if b"PRIVATE KEY" not in key:
        raise AuthConfigError(f"--tls-key {key_file}: not a PEM private key")
    return grpc.ssl_server_credentials([(key, cert)])


def _keys_from_jwks(data: Any, source: str) -> dict[str, jwt.PyJWK]:
    try:
        jwk_set = jwt.PyJWKSet.from_dict(data)
    except (jwt.PyJWKSetError, jwt.InvalidKeyError, TypeError, ValueError, KeyError) as error:
        raise AuthConfigError(f"JWKS from {source}: {error}") from None
    return {key.key_id or "": key for key in jwk_set.keys}


def _fetch_json(url: str) -> Any:
    if not url.startswith(("https://", "http://")):
        raise AuthConfigError(f"{url}: only http(s) URLs are fetched")
    with urllib.request.urlopen(url, timeout=JWKS_FETCH_TIMEOUT) as response:  # noqa: S310 (scheme checked)
        return json.loads(response.read(1_000_000))


class JwtVerifier:
    """Checks bearer JWTs: signature against the JWKS, expiry, audience, and issuer if given."""

    def __init__(
        self,
        *,
        audience: str,
        issuer: str | None = None,
        jwks_file: str | Path | None = None,
        jwks_url: str | None = None,
        leeway: float = 0.0,
    ) -> None:
        if not audience:
            raise AuthConfigError("--oauth-audience is required with --oauth-issuer/--oauth-jwks")
        if not (issuer or jwks_file or jwks_url):
            raise AuthConfigError("give --oauth-jwks FILE or --oauth-issuer URL to verify tokens with")
        self.audience = audience
        self.issuer = issuer.rstrip("/") if issuer else None
        self.leeway = leeway
        self._jwks_url = jwks_url
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        # Verified tokens -> their expiry: a worker sends the same token for minutes, and an RSA
        # verification per call would be most of a small call's CPU.
        self._verified: OrderedDict[str, float] = OrderedDict()
        if jwks_file is not None:
            raw = read_file(jwks_file, "--oauth-jwks")
            try:
                data = json.loads(raw)
            except ValueError as error:
                raise AuthConfigError(f"--oauth-jwks {jwks_file}: not JSON: {error}") from None
            self._keys = _keys_from_jwks(data, str(jwks_file))
            if not self._keys:
                raise AuthConfigError(f"--oauth-jwks {jwks_file}: no usable key")

    def _discover_jwks_url(self) -> str:
        if self._jwks_url is None:
            assert self.issuer is not None
            config = _fetch_json(f"{self.issuer}/.well-known/openid-configuration")
            url = config.get("jwks_uri") if isinstance(config, dict) else None
            if not isinstance(url, str):
                raise AuthConfigError(f"{self.issuer}: openid-configuration has no jwks_uri")
            self._jwks_url = url
        return self._jwks_url

    def refresh_keys(self) -> None:
        """Fetch the issuer's JWKS (blocking: call from a thread in async code)."""
        url = self._discover_jwks_url()
        self._keys = {**self._keys, **_keys_from_jwks(_fetch_json(url), url)}
        self._fetched_at = time.monotonic()

    def _key_for(self, kid: str) -> jwt.PyJWK | None:
        key = self._keys.get(kid)
        if key is None and not kid and len(self._keys) == 1:
            key = next(iter(self._keys.values()))  # a JWKS of one key without kids
        return key

    def needs_fetch(self, token: str) -> bool:
        """True when the token's key is unknown and the issuer's JWKS may be fetched again now."""
        if self.issuer is None and self._jwks_url is None:
            return False
        try:
            kid = jwt.get_unverified_header(token).get("kid") or ""
        except jwt.PyJWTError:
            return False
        return self._key_for(kid) is None and time.monotonic() - self._fetched_at > JWKS_REFETCH_SECONDS

    def verify(self, token: str) -> None:
        """Raise TokenRejected unless the token is acceptable now."""
        now = time.time()
        expires = self._verified.get(token)
        if expires is not None:
            if expires + self.leeway > now:
                return
            del self._verified[token]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise TokenRejected(f"{INVALID_TOKEN}: malformed token ({error})") from None
        key = self._key_for(header.get("kid") or "")
        if key is None:
            raise TokenRejected(f"{INVALID_TOKEN}: signing key {header.get('kid')!r} is not known")
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected(f"{INVALID_TOKEN}: token expired") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected(f"{INVALID_TOKEN}: audience is not {self.audience!r}") from None
        except jwt.InvalidIssuerError:
            raise TokenRejected(f"{INVALID_TOKEN}: issuer is not {self.issuer!r}") from None
        except jwt.InvalidSignatureError:
            raise TokenRejected(f"{INVALID_TOKEN}: signature verification failed") from None
        except jwt.PyJWTError as error:
            raise TokenRejected(f"{INVALID_TOKEN}: {error}") from None
        self._verified[token] = float(claims["exp"])
        if len(self._verified) > 4096:
            self._verified.popitem(last=False)


def bearer_token(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def _rejecting(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same shape as ``handler`` that ends the call with UNAUTHENTICATED."""

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def streaming(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield  # pragma: no cover (abort raises)

    deserializer = handler.request_deserializer
    serializer = handler.response_serializer
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(unary, deserializer, serializer)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(streaming, deserializer, serializer)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(unary, deserializer, serializer)
    return grpc.stream_stream_rpc_method_handler(streaming, deserializer, serializer)


class BearerAuthInterceptor(grpc.aio.ServerInterceptor):
    """Lets a call through only with a valid bearer JWT (health excepted)."""

    def __init__(self, verifier: JwtVerifier) -> None:
        self.verifier = verifier
        self.rejected = 0

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        if method.startswith(OPEN_SERVICES):
            return await continuation(handler_call_details)
        token = bearer_token(handler_call_details.invocation_metadata)
        message: str | None = MISSING_TOKEN if token is None else None
        if token is not None:
            if self.verifier.needs_fetch(token):
                try:
                    await asyncio.to_thread(self.verifier.refresh_keys)
                except (OSError, ValueError) as error:
                    log.warning("cannot fetch the issuer's JWKS: %s", error)
            try:
                self.verifier.verify(token)
            except TokenRejected as error:
                message = str(error)
        handler = await continuation(handler_call_details)
        if message is None or handler is None:
            return handler
        self.rejected += 1
        log.info("refused %s: %s", method, message)
        return _rejecting(handler, message)


def verifier_from_options(
    *, issuer: str | None, audience: str | None, jwks_file: str | None
) -> JwtVerifier | None:
    """The verifier the CLI options ask for, or None when no OAuth option is given."""
    if not (issuer or jwks_file or audience):
        return None
    verifier = JwtVerifier(audience=audience or "", issuer=issuer, jwks_file=jwks_file)
    if jwks_file is None:
        try:
            verifier.refresh_keys()  # fail at start-up, not at the first call, if the issuer is wrong
        except (OSError, ValueError) as error:
            raise AuthConfigError(f"--oauth-issuer {issuer}: cannot fetch its JWKS: {error}") from None
    return verifier
