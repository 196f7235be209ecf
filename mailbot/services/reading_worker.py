"""Reading mail in a child process, with a time budget per message.

Reading (parse → automation → orders → language → intent) is pure but it is also where a hostile or
pathological mail costs the most. In the main process a mail that reads for ever would stall its
mailbox: the batch never commits, the same mail is read again at every poll, and the mail behind it
is never processed. So the intake hands raw bytes to a child process, started ahead of need and
reused, and waits for each reading at most `budget` seconds. A child past the deadline is killed
(SIGKILL: it holds nothing but the mail) and replaced, the mail gets a `TimeBudgetExceeded` result,
and the next mail is read by the new child. A child that dies on its own (a crash in a C extension,
the OOM killer) costs only the mail in hand, the same way.

The child reads the next batch while the main process stores the current one, which puts the
second CPU core to work: each `ProcessReader` has a feeder thread doing the send / wait / receive
round trips, so `submit` returns at once and the results are collected later, in order.

`ReaderPool` lends one `ProcessReader` per poll in progress (the worker polls mailboxes in parallel
threads) and keeps them between polls, so a child process is started once, not per poll.
`InlineReader` reads in the calling thread instead; it can only notice an overrun after the fact
and is what tests and tools that build an `Intake` by hand get by default.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import importlib
import json
import logging
import multiprocessing
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Protocol

from mailbot.core.reading import ReadingConfig, read
from mailbot.core.types import Identity, Reading

log = logging.getLogger("mailbot.reading")

#: read(raw, identity=…, config=…) -> Reading; a module-level function, so it can travel to the child.
ReadFunction = Callable[..., Reading]

#: How long a new child may take to import everything before it counts as broken.
_START_SECONDS = 120.0
_PR_SET_PDEATHSIG = 1


class TimeBudgetExceeded(Exception):
    """A mail took longer than its budget to read, decide and render. The message starts with
    "time budget exceeded", which is what the ledger reason and the health view show."""


class ReadingProcessDied(Exception):
    """The child process died while reading a mail (a crash, the OOM killer)."""


@dataclass(frozen=True)
class ReadResult:
    """The reading of one mail, or why there is none; `seconds` is the time reading took."""

    reading: Reading | None
    error: Exception | None = None
    seconds: float = 0.0


class ReadJob(Protocol):
    def results(self) -> Iterator[ReadResult]:
        """One result per submitted mail, in order; blocks until each is there."""
        ...


class Reader(Protocol):
    def submit(self, raws: Sequence[bytes], config: ReadingConfig, budget: float) -> ReadJob:
        """Start reading these mails (the work may begin at once, in another process)."""
        ...


def overrun(seconds: float, budget: float, what: str = "reading") -> TimeBudgetExceeded:
    return TimeBudgetExceeded(
        f"time budget exceeded: {what} took {seconds:.1f} s, more than the {budget:g} s allowed per message"
    )


# -- in the calling thread ---------------------------------------------------------------------------


@dataclass
class _InlineJob:
    read_fn: ReadFunction
    identity: Identity
    raws: Sequence[bytes]
    config: ReadingConfig
    budget: float

    def results(self) -> Iterator[ReadResult]:
        for raw in self.raws:
            start = time.perf_counter()
            try:
                reading = self.read_fn(raw, identity=self.identity, config=self.config)
            except Exception as exc:  # read() is total by design; this guards against a bug in it
                log.exception("reading a message failed")
                yield ReadResult(None, exc, time.perf_counter() - start)
                continue
            seconds = time.perf_counter() - start
            if seconds > self.budget:
                yield ReadResult(None, overrun(seconds, self.budget), seconds)
            else:
                yield ReadResult(reading, None, seconds)


@dataclass
class InlineReader:
    """Reads in the calling thread, when results are collected; an overrun is noticed afterwards."""

    identity: Identity
    read_fn: ReadFunction = read

    def submit(self, raws: Sequence[bytes], config: ReadingConfig, budget: float) -> ReadJob:
        return _InlineJob(self.read_fn, self.identity, raws, config, budget)


# -- in a child process ------------------------------------------------------------------------------

# The child is a fresh interpreter: not a fork of this process (threads, open database connections),
# nor multiprocessing's spawn or forkserver child, which imports the parent's __main__ (for
# `python -m mailbot`, the whole CLI, unguarded). It takes the parent's sys.path so it imports the
# very same mailbot, then serves one socket.
_BOOT = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from mailbot.services.reading_worker import child_main; child_main(int(sys.argv[2]))"
)


def _die_with_parent() -> None:
    """Best effort (Linux): the kernel kills this child when the thread that started it is gone."""
    name = ctypes.util.find_library("c")
    if name is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(name, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _function(spec: str) -> ReadFunction:
    module, _, name = spec.partition(":")
    found: ReadFunction = getattr(importlib.import_module(module), name)
    return found


def child_main(fd: int) -> None:
    """The child's loop: ("config", ReadingConfig) sets the rules; ("read", [raw, …]) answers one
    result per mail, each as soon as it is there."""
    # A SIGTERM or Ctrl-C to the whole process group is for the parent, which finishes the mail in
    # hand; the child ends when its socket closes or the parent kills it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()
    conn = Connection(fd)
    identity, spec = conn.recv()
    read_fn = _function(spec)
    conn.send("ready")
    config: ReadingConfig | None = None
    while True:
        try:
            kind, payload = conn.recv()
        except (EOFError, OSError):
            return
        if kind == "config":
            config = payload
            continue
        for index in range(len(payload)):
            raw, payload[index] = payload[index], b""  # each mail is let go once it is read
            start = time.perf_counter()
            try:
                if config is None:
                    raise RuntimeError("no reading configuration was sent before the mail")
                answer: tuple[str, Any] = ("ok", read_fn(raw, identity=identity, config=config))
            except Exception as exc:
                answer = ("error", f"{type(exc).__name__}: {exc}")
            del raw
            try:
                conn.send((answer, time.perf_counter() - start))
            except (OSError, ValueError):
                return


@dataclass
class _Job:
    raws: list[bytes]
    config: ReadingConfig
    budget: float
    answers: queue.SimpleQueue[ReadResult] = field(default_factory=queue.SimpleQueue)

    def results(self) -> Iterator[ReadResult]:
        for _ in range(len(self.raws)):
            yield self.answers.get()


class ProcessReader:
    """One child process and the thread that feeds it; see the module docstring."""

    def __init__(self, identity: Identity, read_fn: ReadFunction = read) -> None:
        self.identity = identity
        self.read_fn = read_fn
        self.restarts = 0
        self._spec = f"{read_fn.__module__}:{read_fn.__qualname__}"
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._config_sent: ReadingConfig | None = None
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._child_lock = threading.Lock()  # the feeder replaces the child; close() stops it
        self._thread = threading.Thread(target=self._feed, name="mail-reader", daemon=True)
        self._closed = False
        self._thread.start()  # it starts the child, so creating a reader never waits for one

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def submit(self, raws: Sequence[bytes], config: ReadingConfig, budget: float) -> ReadJob:
        if self._closed:
            raise RuntimeError("this reader is closed")
        job = _Job(list(raws), config, budget)
        if job.raws:
            self._jobs.put(job)
        return job

    def close(self) -> None:
        """Stop the child and the feeder thread; mail still waiting gets an error result.

        Does not wait for a child that is still starting: the feeder thread stops it once it is
        there, and a child left behind at exit dies with this process anyway.
        """
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()  # the feeder, if it was waiting on it, sees the socket close
        self._thread.join(timeout=5)

    # -- the feeder thread

    def _feed(self) -> None:
        try:
            self._start_child()
        except Exception:  # retried with the first mail, where the error then lands
            log.exception("the reading process could not be started")
        try:
            while (job := self._jobs.get()) is not None:
                self._read_job(job)
        finally:
            self._stop_child()

    def _read_job(self, job: _Job) -> None:
        """Send the job's mail in one message and collect one answer per mail, each with its deadline.

        After an overrun or a death, the mail not yet answered goes to the new child.
        """
        waiting = list(range(len(job.raws)))
        while waiting:
            try:
                done = self._read_some(job, waiting)
            except Exception as exc:  # the thread must answer every mail, whatever happens
                log.exception("the reading process could not be used")
                self._stop_child()
                job.answers.put(ReadResult(None, exc))
                done = 1
            for index in waiting[:done]:
                job.raws[index] = b""  # keep no mail once it is answered
            waiting = waiting[done:]

    def _read_some(self, job: _Job, waiting: list[int]) -> int:
        """Answer mail from the front of `waiting`; returns how many were answered."""
        if self._closed:
            job.answers.put(ReadResult(None, ReadingProcessDied("the reader was closed first")))
            return 1
        if self._process is None or self._process.poll() is not None:
            self._start_child()
        conn = self._conn
        if conn is None:  # closed meanwhile
            job.answers.put(ReadResult(None, ReadingProcessDied("the reader was closed first")))
            return 1
        answered = 0
        try:
            if job.config is not self._config_sent:
                conn.send(("config", job.config))
                self._config_sent = job.config
            conn.send(("read", [job.raws[index] for index in waiting]))
            # Each mail's clock starts when the answer before it arrives: the child reads them in
            # order, so that is when it took this one up (or later, never earlier).
            start = time.perf_counter()
            for _ in waiting:
                if not conn.poll(max(job.budget - (time.perf_counter() - start), 0)):
                    seconds = time.perf_counter() - start
                    log.warning(
                        "reading a message took more than %g s: the reading process is replaced", job.budget
                    )
                    self._replace_child()
                    job.answers.put(ReadResult(None, overrun(seconds, job.budget), seconds))
                    return answered + 1
                (kind, value), seconds = conn.recv()
                start = time.perf_counter()
                if kind == "ok":
                    job.answers.put(ReadResult(value, None, seconds))
                else:
                    log.error("reading a message failed: %s", value)
                    job.answers.put(ReadResult(None, RuntimeError(value), seconds))
                answered += 1
        except (EOFError, OSError) as exc:
            process = self._process
            code = None
            if process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    code = process.wait(timeout=5)  # its socket is closed: it is dying, learn how
            self._replace_child()
            job.answers.put(ReadResult(None, ReadingProcessDied(_died(code, exc))))
            return answered + 1
        return answered

    # -- the child

    def _start_child(self) -> None:
        with self._child_lock:
            if self._closed or (self._process is not None and self._process.poll() is None):
                return
            self._stop_child_locked()
            self._spawn()

    def _spawn(self) -> None:
        """Start a child and wait until it has imported everything (not counted in any budget)."""
        parent_end, child_end = multiprocessing.Pipe(duplex=True)
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, json.dumps(sys.path), str(child_end.fileno())],
                pass_fds=[child_end.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        finally:
            child_end.close()
        try:
            parent_end.send((self.identity, self._spec))
            if not parent_end.poll(_START_SECONDS) or parent_end.recv() != "ready":
                raise ReadingProcessDied(f"the reading process did not start within {_START_SECONDS} s")
        except (EOFError, OSError, ReadingProcessDied):
            process.kill()
            process.wait()
            parent_end.close()
            raise
        self._process, self._conn, self._config_sent = process, parent_end, None
        log.debug("reading process %s started", process.pid)

    def _stop_child(self) -> None:
        with self._child_lock:
            self._stop_child_locked()

    def _stop_child_locked(self) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        self._config_sent = None
        if conn is not None:
            conn.close()
        if process is not None:
            if process.poll() is None:
                process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)

    def _replace_child(self) -> None:
        with self._child_lock:
            self._stop_child_locked()
            self.restarts += 1
            if not self._closed:
                self._spawn()


def _died(code: int | None, exc: BaseException) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"the reading process died of {signal.Signals(-code).name} while reading this mail"
    if code is not None:
        return f"the reading process exited with code {code} while reading this mail"
    return f"the reading process stopped answering ({type(exc).__name__})"


class ReaderPool:
    """Lends a `ProcessReader` to each poll in progress and keeps it for the next one."""

    def __init__(self, identity: Identity, read_fn: ReadFunction = read) -> None:
        self.identity = identity
        self.read_fn = read_fn
        self._idle: list[ProcessReader] = []
        self._all: list[ProcessReader] = []
        self._lock = threading.Lock()
        atexit.register(self.close)

    def warm(self) -> None:
        """Start one reader now; its child process starts while the caller goes on."""
        reader = ProcessReader(self.identity, self.read_fn)
        with self._lock:
            self._all.append(reader)
            self._idle.append(reader)

    @contextmanager
    def lease(self) -> Iterator[Reader]:
        with self._lock:
            reader = self._idle.pop() if self._idle else None
        if reader is None:
            reader = ProcessReader(self.identity, self.read_fn)
            with self._lock:
                self._all.append(reader)
        try:
            yield reader
        finally:
            with self._lock:
                self._idle.append(reader)

    def close(self) -> None:
        with self._lock:
            readers, self._all, self._idle = self._all, [], []
        for reader in readers:
            reader.close()
