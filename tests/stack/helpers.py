"""Running `run_stack` as a real process in tests, and talking to what it serves."""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid` (Linux /proc)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(part) for part in text.split()]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Browser:
    """A cookie-keeping HTTP client that logs in through the console's login form."""

    def __init__(self, base_url: str) -> None:
        if not base_url.startswith("http://127.0.0.1:"):
            raise ValueError(f"tests talk to loopback http only, not {base_url}")
        self.base_url = base_url.rstrip("/")
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        request = urllib.request.Request(self.base_url + path, headers=headers or {})  # noqa: S310 (http base, checked)
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def get_json(self, path: str, headers: dict[str, str] | None = None) -> Any:
        status, body = self.get(path, headers)
        assert status == 200, f"GET {path}: {status} {body[:300]}"
        return json.loads(body)

    def login(self, username: str, password: str) -> None:
        status, body = self.get("/accounts/login/")
        assert status == 200, status
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body)
        assert token, "no CSRF token in the login form"
        data = urllib.parse.urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": token.group(1), "next": "/"}
        ).encode()
        request = urllib.request.Request(  # noqa: S310 (http base, checked)
            self.base_url + "/accounts/login/",
            data=data,
            headers={"Referer": self.base_url + "/accounts/login/"},
        )
        with self.opener.open(request, timeout=10) as response:
            final = response.geturl()
        assert "/accounts/login/" not in final, f"login as {username} failed (ended on {final})"


class StackProcess:
    """`run_stack` (or `python -m console.demo`, which becomes it) with its output in files."""

    def __init__(self, argv: list[str], *, env: dict[str, str], log_dir: Path) -> None:
        self.stdout_path = log_dir / "stack.stdout"
        self.stderr_path = log_dir / "stack.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=err)

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return (
            self.stdout_path.read_text(errors="replace")
            + "\n--- stderr ---\n"
            + self.stderr_path.read_text(errors="replace")
        )

    def wait_started(self, timeout: float) -> str:
        def started() -> str | None:
            if self.process.poll() is not None:
                raise AssertionError(f"run_stack exited with {self.process.returncode}:\n{self.output()}")
            text = self.stdout_path.read_text(errors="replace")
            return text if "Stop with Ctrl-C." in text else None

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = started()
            if result:
                return result
            time.sleep(0.25)
        raise AssertionError(f"run_stack did not finish starting within {timeout:.0f} s:\n{self.output()}")

    def children(self) -> dict[int, str]:
        return {pid: cmdline(pid) for pid in child_pids(self.pid)}

    def stop(self, signum: int = signal.SIGINT, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_all()
            raise AssertionError(f"run_stack did not stop within {timeout:.0f} s:\n{self.output()}") from None

    def kill_all(self) -> None:
        """Last resort for a failing test: no process of ours may outlive it."""
        for pid in child_pids(self.pid):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def python() -> str:
    return sys.executable
