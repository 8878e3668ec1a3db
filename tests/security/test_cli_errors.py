"""Security options that cannot work stop the engine and the proxy at start-up with a message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.security.conftest import REPO_ROOT
from tests.security.pki import LocalCA


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("program", ["engine", "routing"])
def test_bad_security_options_are_refused(program: str, tmp_path: Path) -> None:
    base = (
        ["-m", "engine", "--port", "0", "--data-dir", str(tmp_path / "d")]
        if program == "engine"
        else ["-m", "routing", "--port", "0", "--cluster", "1=127.0.0.1:1"]
    )
    cert = LocalCA(tmp_path).issue("server")
    not_json = tmp_path / "jwks.json"
    not_json.write_text("{nope")
    cases = {
        "--tls-key": [*base, "--tls-cert", str(cert.cert)],
        "No such file": [*base, "--tls-cert", str(tmp_path / "missing.pem"), "--tls-key", str(cert.key)],
        "not a PEM private key": [*base, "--tls-cert", str(cert.cert), "--tls-key", str(cert.cert)],
        "--oauth-jwks FILE or --oauth-issuer": [*base, "--oauth-audience", "zeebe-api"],
        "--oauth-audience is required": [*base, "--oauth-jwks", str(not_json)],
        "not JSON": [*base, "--oauth-jwks", str(not_json), "--oauth-audience", "a"],
        "cannot fetch its JWKS": [*base, "--oauth-issuer", "https://127.0.0.1:1", "--oauth-audience", "a"],
    }
    for expected, args in cases.items():
        result = run(*args)
        assert result.returncode == 2 and expected in result.stderr, (expected, result.stderr[-500:])
