"""The SIGTERM/SIGINT handlers of `import_records` and `run_stack` never take their stop event's lock.

Python runs a signal handler in the main thread between bytecodes. That thread waits on the stop
event (`stop.wait(...)`), and `Event.wait` holds the event's condition, a plain non-reentrant lock,
for a few bytecodes around its inner wait: a handler calling `stop.set()` at that moment blocks for
good on a lock its own thread holds, and the process ignores every later SIGTERM (the exporters child
did, commit 3bfeedd).

The in-process tests hold the condition in the test's thread, as the main thread does inside
`wait()`, and call the installed handler from another thread, so an unfixed handler blocks without
hanging the test run. The subprocess test raises the signal in the thread that holds the lock, which is
the real case, in a child that is killed if it hangs.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import pytest

from console.stack import Stack
from console.stack import install_stop_handlers as install_stack_stop_handlers
from processes.management.commands.import_records import (
    install_stop_handlers as install_import_stop_handlers,
)

REPO = Path(__file__).resolve().parent.parent
# Generous bounds: a fixed handler returns at once; these only end the wait for an unfixed one.
HANDLER_RETURN_S = 5.0
EVENT_SET_S = 5.0
CHILD_TIMEOUT_S = 90.0

Handler = Callable[[int, FrameType | None], object]


@pytest.fixture(autouse=True)
def _restore_stop_signals() -> Iterator[None]:
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def installed_handler(signum: int) -> Handler:
    handler = signal.getsignal(signum)
    assert callable(handler), f"no handler installed for {signal.Signals(signum).name}"
    return handler


def handler_returns_while_lock_held(event: threading.Event, handler: Handler, signum: int) -> bool:
    """Whether `handler` returns (within HANDLER_RETURN_S) while this thread holds `event`'s
    condition lock, as the main thread does for a few bytecodes inside `event.wait()`."""
    condition: threading.Condition = event._cond  # type: ignore[attr-defined]
    caller = threading.Thread(target=handler, args=(signum, None), name="signal-handler", daemon=True)
    with condition:
        caller.start()
        caller.join(HANDLER_RETURN_S)
        returned = not caller.is_alive()
    caller.join(HANDLER_RETURN_S)  # an unfixed handler goes on once the lock is free
    return returned


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_import_records_handler_does_not_take_the_event_lock(
    signum: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="processes.importer")
    stop = threading.Event()
    uninstall = install_import_stop_handlers(stop)
    try:
        assert handler_returns_while_lock_held(stop, installed_handler(signum), signum), (
            "the handler blocked on the stop event's lock"
        )
        assert stop.wait(EVENT_SET_S), "the stop event was not set after the lock was released"
    finally:
        uninstall()
    assert f"received {signal.Signals(signum).name}: stopping after the batch in flight" in caplog.messages


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_stack_handler_does_not_take_the_event_lock(signum: int, tmp_path: Path) -> None:
    said: list[str] = []
    stack = Stack(log_dir=tmp_path, say=said.append)
    uninstall = install_stack_stop_handlers(stack)
    try:
        assert handler_returns_while_lock_held(stack.stop_requested, installed_handler(signum), signum), (
            "the handler blocked on the stop event's lock"
        )
        assert stack.stop_requested.wait(EVENT_SET_S), (
            "stop_requested was not set after the lock was released"
        )
    finally:
        uninstall()
    assert said == [f"run_stack: {signal.Signals(signum).name} received, stopping"]


def test_uninstall_puts_the_previous_handlers_back_and_ends_the_thread(tmp_path: Path) -> None:
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    before = set(threading.enumerate())
    uninstalls = [
        install_import_stop_handlers(threading.Event()),
        install_stack_stop_handlers(Stack(log_dir=tmp_path, say=lambda message: None)),
    ]
    watchers = {
        thread for thread in set(threading.enumerate()) - before if thread.name.endswith("-stop-signals")
    }
    assert len(watchers) == 2, watchers
    for uninstall in reversed(uninstalls):
        uninstall()

    assert {signum: signal.getsignal(signum) for signum in previous} == previous
    for watcher in watchers:
        watcher.join(EVENT_SET_S)
        assert not watcher.is_alive(), f"{watcher.name} still runs after uninstall"


# The real case: the signal arrives in the thread that holds the lock. Each script prints "returned"
# once the handler has run and, last, "set" once the event is set; an unfixed handler hangs the child.
IMPORT_RECORDS_CHILD = """
import django, signal
django.setup()
import threading
from processes.management.commands.import_records import install_stop_handlers
stop = threading.Event()
install_stop_handlers(stop)
with stop._cond:  # as inside stop.wait()
    signal.raise_signal(signal.SIGTERM)  # the handler runs here, in this thread
print("returned", flush=True)
print("set" if stop.wait(30) else "not set", flush=True)
"""

RUN_STACK_CHILD = """
import signal, sys, tempfile
from pathlib import Path
from console.stack import Stack, install_stop_handlers
# what the stack says goes to stderr: on stdout its thread's line could land inside "returned"
stack = Stack(log_dir=Path(tempfile.gettempdir()), say=lambda message: print(message, file=sys.stderr, flush=True))
install_stop_handlers(stack)
with stack.stop_requested._cond:  # as inside stop_requested.wait()
    signal.raise_signal(signal.SIGTERM)  # the handler runs here, in this thread
print("returned", flush=True)
print("set" if stack.stop_requested.wait(30) else "not set", flush=True)
"""


@pytest.mark.parametrize(
    "script", [IMPORT_RECORDS_CHILD, RUN_STACK_CHILD], ids=["import_records", "run_stack"]
)
def test_signal_in_the_thread_holding_the_lock(script: str) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "console.settings"}
    try:
        done = subprocess.run(
            [sys.executable, "-c", script],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as hung:
        pytest.fail(f"the child hung in its signal handler; its output: {hung.stdout!r} {hung.stderr!r}")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines == ["returned", "set"], done.stdout + done.stderr
