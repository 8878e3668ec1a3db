"""A cluster's record-source settings (`Cluster.record_source_config`): what each source takes,
checked when a cluster is saved, and the secrets it names resolved when the importer opens it.

The settings are stored in the database and shown in the admin, so, as with
`gateway_security` (routing/security.py), a secret is never in them: a password or API key is
named by the environment variable (``*_env``) or the file (``*_file``) that holds it, and a URL
that carries a password (``redis://:secret@host``) is refused with the way to do it instead.

- ``engine_log``: ``data_dir``.
- ``redis``: ``url`` (``redis://``, ``rediss://`` or ``unix://``) or ``url_env`` (the name of
  an environment variable holding the URL, which may then carry a password), ``stream_prefix``,
  ``group``, ``consumer``, ``username``, ``password_env`` | ``password_file``; ``data_dir`` (the
  engine's log directory, kept by ``run_stack`` to tie the cluster to its engine; unused here).
- ``elasticsearch``: ``url`` (``http://`` or ``https://``) or ``url_env``, ``index_prefix``,
  ``username`` with ``password_env`` | ``password_file``, or ``api_key_env`` | ``api_key_file``;
  ``ca_certs`` (a CA bundle file for a private CA).

A cluster may be saved before its source is known (only routed, not imported): a missing
``data_dir`` or ``url`` is the importer's error when it opens the source, not the model's.

Pure Python (no Django): the model validates with it, the importer's source registry reads
secrets with it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_COMMON_SECRET_KEYS = ("password_env", "password_file")
ALLOWED_KEYS: dict[str, frozenset[str]] = {
    "engine_log": frozenset({"data_dir"}),
    "redis": frozenset(
        {"url", "url_env", "stream_prefix", "group", "consumer", "username", "data_dir", *_COMMON_SECRET_KEYS}
    ),
    "elasticsearch": frozenset(
        {
            "url",
            "url_env",
            "index_prefix",
            "username",
            "api_key_env",
            "api_key_file",
            "ca_certs",
            *_COMMON_SECRET_KEYS,
        }
    ),
}
_URL_SCHEMES = {"redis": ("redis", "rediss", "unix"), "elasticsearch": ("http", "https")}


class SourceSettingsError(ValueError):
    """Record-source settings a source cannot use; the message says what to change."""


def validate(source: str, config: Mapping[str, Any] | None) -> None:
    """Refuse settings the importer could not use, and any secret written into them."""
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise SourceSettingsError('must be a JSON object, e.g. {"url": "redis://127.0.0.1:6379/0"}')
    allowed = ALLOWED_KEYS.get(source)
    if allowed is None:
        return  # an unknown source is the record_source field's error, not this one's
    unknown = sorted(set(config) - allowed)
    if unknown:
        secret_like = [key for key in unknown if key in ("password", "api_key", "secret", "token")]
        if secret_like:
            raise SourceSettingsError(
                f"{secret_like[0]} is never stored here: name the environment variable that holds it "
                f"({secret_like[0]}_env) or the file ({secret_like[0]}_file)"
            )
        raise SourceSettingsError(
            f"unknown setting(s) {', '.join(unknown)} for a {source} source; it takes {', '.join(sorted(allowed))}"
        )
    for key, value in config.items():
        if not isinstance(value, str) or not value.strip():
            raise SourceSettingsError(f"{key} must be a non-empty string")
    if source == "engine_log":
        return
    if "url" in config and "url_env" in config:
        raise SourceSettingsError("give url or url_env, not both")
    if "url" in config:  # a missing one is the importer's clear error when it opens the source
        _check_url(source, config["url"])
    if "url_env" in config and not _ENV_NAME.match(config["url_env"]):
        raise SourceSettingsError(f"url_env must be an environment variable name, not {config['url_env']!r}")
    _check_secret_pair(config, "password")
    if source == "elasticsearch":
        _check_secret_pair(config, "api_key")
        has_password = "password_env" in config or "password_file" in config
        has_key = "api_key_env" in config or "api_key_file" in config
        if has_password and has_key:
            raise SourceSettingsError("use either username/password or an API key, not both")
        if has_password and "username" not in config:
            raise SourceSettingsError("a password needs a username for Elasticsearch basic authentication")


def _check_url(source: str, url: str) -> None:
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError as error:
        raise SourceSettingsError(f"url {url!r} is not a valid URL: {error}") from None
    if parts.scheme not in _URL_SCHEMES[source]:
        raise SourceSettingsError(
            f"url must start with {' or '.join(s + '://' for s in _URL_SCHEMES[source])}, not {url!r}"
        )
    if has_password:
        raise SourceSettingsError(
            "url carries a password, which would be stored and shown here: remove it from the URL and "
            "name the environment variable that holds it (password_env) or the file (password_file)"
        )
    if parts.scheme != "unix" and not parts.hostname:
        raise SourceSettingsError(f"url {url!r} names no host")


def _check_secret_pair(config: Mapping[str, Any], name: str) -> None:
    env, file = config.get(f"{name}_env"), config.get(f"{name}_file")
    if env and file:
        raise SourceSettingsError(f"give {name}_env or {name}_file, not both")
    if env and not _ENV_NAME.match(env):
        raise SourceSettingsError(f"{name}_env must be an environment variable name, not {env!r}")


def url_has_password(url: str) -> bool:
    try:
        return urlsplit(url).password is not None
    except ValueError:
        return False


def source_url(config: Mapping[str, Any], *, owner: str) -> str | None:
    """The source's URL: ``url``, or the value of the environment variable ``url_env`` names (a
    URL with a password in it, as REDIS_URL often is, stays in the environment). None: neither."""
    name = config.get("url_env")
    if name:
        value = os.environ.get(str(name))
        if not value:
            raise SourceSettingsError(f"{owner}: environment variable {name} (url_env) is not set")
        return value
    url = config.get("url")
    return str(url) if url else None


def read_secret(config: Mapping[str, Any], name: str, *, owner: str) -> str | None:
    """The secret ``name`` ("password", "api_key") that ``config`` points to; None when it names
    none. Raises SourceSettingsError naming the variable or file when it cannot be read."""
    env, file = config.get(f"{name}_env"), config.get(f"{name}_file")
    if env:
        value = os.environ.get(str(env))
        if value is None:
            raise SourceSettingsError(f"{owner}: environment variable {env} ({name}_env) is not set")
        return value
    if file:
        try:
            return Path(str(file)).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise SourceSettingsError(f"{owner}: {name}_file {file}: {error.strerror}") from None
    return None
