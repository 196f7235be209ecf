"""Several workers on one database: who is alive (heartbeats) and who polls which mailbox (leases).

A worker is a row (id, host, pid, heartbeat). It is *gone* when its heartbeat is older than
`stale_after`, or, on this same host, when its process no longer exists (a SIGKILLed `poll --once`
is recognised at once, without waiting for the heartbeat to age). Only the outbox rows of a gone
worker are ever recovered; a live worker's send in flight is never taken for a crash survivor.

A mailbox is polled by the holder of its lease: a row (mailbox, owner, expires_at) taken or renewed
with one upsert whose update applies only to our own or an expired lease, so two workers asking at
the same moment cannot both get it. A worker without the lease skips that mailbox for the round.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from mailbot.store import repo
from mailbot.store.db import session_scope

_FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class WorkerIdentity:
    """This process's name in the `worker` table: unique even for two workers in one process."""

    id: str
    host: str
    pid: int

    @classmethod
    def new(cls) -> WorkerIdentity:
        host = socket.gethostname()
        pid = os.getpid()
        return cls(id=f"{host[:80]}:{pid}:{secrets.token_hex(4)}", host=host, pid=pid)


@dataclass(frozen=True)
class Liveness:
    """How often a worker beats and when its silence means it is gone."""

    heartbeat: timedelta = timedelta(seconds=10)
    stale_after: timedelta = timedelta(seconds=60)
    lease_ttl: timedelta = timedelta(seconds=60)


@dataclass
class LiveSet:
    """The ids of the workers alive at `at` (read once per drain)."""

    at: datetime
    ids: set[str] = field(default_factory=set)

    def alive(self, owner: str | None) -> bool:
        return owner is not None and owner in self.ids


def beat(engine: Engine, me: WorkerIdentity, now: datetime) -> None:
    """This worker is alive. Rows of workers silent for a day are dropped (each `poll --once` is one)."""
    with session_scope(engine) as session:
        repo.beat(session, me.id, me.host, me.pid, now)
        repo.forget_workers_before(session, now - _FORGET_AFTER)


def retire(engine: Engine, me: WorkerIdentity, mailboxes: list[str]) -> None:
    """A clean stop: forget this worker and give its leases back, so nobody waits for them to age."""
    with session_scope(engine) as session:
        for mailbox in mailboxes:
            repo.release_lease(session, mailbox, me.id)
        repo.remove_worker(session, me.id)


def live_workers(engine: Engine, now: datetime, liveness: Liveness) -> LiveSet:
    with session_scope(engine) as session:
        beats = repo.worker_beats(session)
    here = socket.gethostname()
    live = LiveSet(at=now)
    for worker in beats:
        if worker.heartbeat_at < now - liveness.stale_after:
            continue
        if worker.host == here and not _process_exists(worker.pid):
            continue
        live.ids.add(worker.id)
    return live


def acquire_lease(
    engine: Engine, mailbox: str, me: WorkerIdentity, now: datetime, liveness: Liveness
) -> bool:
    """Take or renew the lease on `mailbox`; False while another live worker holds it.

    A lease whose holder is gone (its process died on this host, or its heartbeat is stale) is
    taken over at once rather than after it expires, so a killed `poll --once` does not hold the
    mailbox back for a whole lease time.
    """
    with session_scope(engine) as session:
        if repo.acquire_lease(session, mailbox, me.id, now, liveness.lease_ttl):
            return True
        holder = repo.lease_holder(session, mailbox)
    if holder is None or live_workers(engine, now, liveness).alive(holder):
        return False
    with session_scope(engine) as session:
        return repo.take_over_lease(session, mailbox, holder, me.id, now, liveness.lease_ttl)


def release_lease(engine: Engine, mailbox: str, me: WorkerIdentity) -> None:
    with session_scope(engine) as session:
        repo.release_lease(session, mailbox, me.id)


def _process_exists(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True
