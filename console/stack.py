"""The supervisor behind `manage.py run_stack`: starts the children of the whole system, keeps them up,
stops them all.

Each child is an ordinary command (`python -m engine`, `manage.py run_gateway_proxy`, ...) writing its
output to `<data dir>/logs/<name>.log`. The supervisor restarts a child that exits on its own and logs
the restart; a child that dies CRASH_LOOP_COUNT times within CRASH_LOOP_WINDOW_S is a crash loop, which
stops the whole stack with the child's last log lines (a stack that silently restarts a broken importer
forever hides the problem). SIGINT and SIGTERM stop the children in reverse start order: SIGTERM, then
SIGKILL after STOP_TIMEOUT_S.

Children run in their own session so that Ctrl-C in the terminal reaches the supervisor only and the
stop order stays ours; on Linux they also get PR_SET_PDEATHSIG so that a supervisor killed with
SIGKILL does not leave them behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

log = logging.getLogger("console.stack")

CRASH_LOOP_COUNT = 5
CRASH_LOOP_WINDOW_S = 60.0
STOP_TIMEOUT_S = 10.0
READY_TIMEOUT_S = 60.0
TAIL_LINES = 25
# Restart delays after the 1st, 2nd, ... crash inside the window (a little backoff, bounded).
RESTART_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)

_PR_SET_PDEATHSIG = 1


class StackError(RuntimeError):
    """The stack cannot start or keep running; the message says which child and why."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Nobody listens on the port. SO_REUSEADDR as the servers use it: a closed connection of an
    earlier run (TIME_WAIT) does not count, a listening socket does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def lock_data_dir(data_dir: Path) -> IO[str]:
    """Hold `<data dir>/run_stack.lock` for this process's lifetime (the returned file must stay open).

    Two stacks on one data directory would run two engines on the same logs and corrupt them; the
    second one is refused with the first one's pid. flock is released by the kernel when the holder
    dies, so a stack killed with SIGKILL leaves no stale lock behind.
    """
    lock_file = (data_dir / "run_stack.lock").open("a+")
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.seek(0)
        holder = lock_file.read().strip() or "unknown"
        lock_file.close()
        raise StackError(
            f"another run_stack (pid {holder}) is using {data_dir}; stop it or use another --data-dir"
        ) from None
    lock_file.seek(0)
    lock_file.truncate()
    lock_file.write(str(os.getpid()))
    lock_file.flush()
    return lock_file


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: ask the kernel for SIGTERM when the supervisor dies.
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except OSError:
            pass


@dataclass
class ChildSpec:
    """How to run one child. `ready_port`: the child is up once this loopback port accepts."""

    name: str
    argv: list[str]
    env: dict[str, str]
    ready_port: int | None = None
    cwd: Path | None = None


@dataclass
class Child:
    spec: ChildSpec
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    crashes: deque[float] = field(default_factory=deque)
    restarts: int = 0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            log_file.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {self.spec.name}\n".encode())
            log_file.flush()
            self.process = subprocess.Popen(
                self.spec.argv,
                env=self.spec.env,
                cwd=self.spec.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def tail(self, lines: int = TAIL_LINES) -> list[str]:
        try:
            with self.log_path.open("rb") as log_file:
                log_file.seek(0, os.SEEK_END)
                size = log_file.tell()
                log_file.seek(max(0, size - 64 * 1024))
                text = log_file.read().decode("utf-8", "replace")
        except OSError:
            return []
        return text.splitlines()[-lines:]

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)


class Stack:
    """The running children, in start order."""

    def __init__(self, *, log_dir: Path, say: Callable[[str], None] | None = None) -> None:
        self.log_dir = log_dir
        self.children: list[Child] = []
        self.stop_requested = threading.Event()
        self.say = say or (lambda message: print(message, file=sys.stderr, flush=True))

    # -- start -----------------------------------------------------------------------------------

    def start(self, spec: ChildSpec, *, wait_ready: bool = True) -> Child:
        child = Child(spec=spec, log_path=self.log_dir / f"{spec.name}.log")
        child.start()
        self.children.append(child)
        log.info("started %s (pid %s)", spec.name, child.pid)
        if wait_ready and spec.ready_port is not None:
            self.wait_ready(child)
        return child

    def wait_ready(self, child: Child, timeout: float = READY_TIMEOUT_S) -> None:
        assert child.spec.ready_port is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stop_requested.is_set():
                raise StackError("stopped during start-up")
            assert child.process is not None
            if child.process.poll() is not None:
                raise StackError(
                    f"{child.spec.name} exited with code {child.process.returncode} during start-up; "
                    f"last lines of {child.log_path}:\n" + "\n".join(child.tail())
                )
            if port_accepts(child.spec.ready_port):
                return
            time.sleep(0.1)
        raise StackError(
            f"{child.spec.name} did not listen on 127.0.0.1:{child.spec.ready_port} within {timeout:.0f} s; "
            f"last lines of {child.log_path}:\n" + "\n".join(child.tail())
        )

    # -- supervise -------------------------------------------------------------------------------

    def check_children(self) -> None:
        """Restart every child that exited on its own; raise StackError on a crash loop."""
        now = time.monotonic()
        for child in self.children:
            assert child.process is not None
            code = child.process.poll()
            if code is None or self.stop_requested.is_set():
                continue
            while child.crashes and now - child.crashes[0] > CRASH_LOOP_WINDOW_S:
                child.crashes.popleft()
            child.crashes.append(now)
            tail = child.tail()
            if len(child.crashes) >= CRASH_LOOP_COUNT:
                raise StackError(
                    f"{child.spec.name} crashed {len(child.crashes)} times within {CRASH_LOOP_WINDOW_S:.0f} s "
                    f"(last exit code {code}); stopping the stack. Last lines of {child.log_path}:\n"
                    + "\n".join(tail)
                )
            delay = RESTART_DELAYS_S[min(len(child.crashes), len(RESTART_DELAYS_S)) - 1]
            self.say(
                f"run_stack: {child.spec.name} (pid {child.pid}) exited with code {code}; restarting in "
                f"{delay:g} s (restart {child.restarts + 1}). Its last line: {tail[-1] if tail else '(none)'}"
            )
            if self.stop_requested.wait(delay):
                return
            child.restarts += 1
            child.start()
            log.info("restarted %s (pid %s)", child.spec.name, child.pid)

    def supervise(self, *, poll_interval: float = 0.25) -> None:
        """Run until stop is requested; raises StackError on a crash loop."""
        while not self.stop_requested.wait(poll_interval):
            self.check_children()

    # -- stop ------------------------------------------------------------------------------------

    def stop(self, *, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop every child, newest first: SIGTERM, wait, SIGKILL what is left. Waits for all."""
        self.stop_requested.set()
        for child in reversed(self.children):
            child.signal(signal.SIGTERM)
            self._wait(child, timeout)

    def _wait(self, child: Child, timeout: float) -> None:
        if child.process is None:
            return
        try:
            child.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.say(f"run_stack: {child.spec.name} did not stop within {timeout:g} s; killing it")
            child.signal(signal.SIGKILL)
            child.process.wait()
        # Whatever the child started in its own session (Celery's pool, for one) goes with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signal.SIGKILL)

    def pids(self) -> dict[str, int | None]:
        return {child.spec.name: child.pid for child in self.children}


def install_stop_handlers(
    stack: Stack, signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)
) -> Callable[[], None]:
    """`signals` request the stack's stop. Returns a function that puts the previous handlers back.

    The handler only queues the signal: it runs in the main thread between bytecodes, possibly while
    that thread is inside `stop_requested.wait()` holding the event's non-reentrant lock, where
    `stop_requested.set()` would block for good and the supervisor would ignore every later signal
    (the exporters child deadlocked so, commit 3bfeedd). `SimpleQueue.put` takes no lock that thread
    could hold (its C implementation is reentrant); a daemon thread says it and sets the event.
    """
    received: queue.SimpleQueue[int | None] = queue.SimpleQueue()

    def request_stop(signum: int, _frame: object) -> None:
        received.put(signum)

    def stop_on_request() -> None:
        while (signum := received.get()) is not None:
            if not stack.stop_requested.is_set():
                stack.say(f"run_stack: {signal.Signals(signum).name} received, stopping")
            stack.stop_requested.set()

    threading.Thread(target=stop_on_request, name="run_stack-stop-signals", daemon=True).start()
    previous = {signum: signal.signal(signum, request_stop) for signum in signals}

    def uninstall() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        received.put(None)

    return uninstall
