"""Staff accounts and console sign-in: argon2 password hashes, server-side sessions, roles.

A session is a random token in an HttpOnly cookie; the database keeps only its SHA-256, so a copy
of the database does not let anyone in. Every sign-in creates a new token (the old one, if any, is
deleted), which is what rotating the session id at login means here.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine
from sqlmodel import Session

from mailbot.store import casework_repo as repo
from mailbot.store.db import session_scope
from mailbot.store.tables import StaffSession, StaffUser

ROLES = ("staff", "supervisor", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}
SESSION_LIFETIME = timedelta(hours=12)
MIN_PASSWORD = 10
_EMAIL = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")
_hasher = PasswordHasher()
# Verifying against this when the account does not exist costs the same time as a real check, so the
# answer time does not tell which addresses have accounts.
_DUMMY_HASH = _hasher.hash("not-a-password-of-anyone")

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


class AccountError(ValueError):
    """An account command that cannot be done, in one line."""


@dataclass(frozen=True)
class StaffAccount:
    email: str
    role: str
    disabled: bool
    created_at: datetime

    def may(self, role: str) -> bool:
        """Whether this account holds `role` or a higher one (admin > supervisor > staff)."""
        return not self.disabled and _RANK[self.role] >= _RANK[role]


@dataclass(frozen=True)
class SignedIn:
    """A live console session: who, and the CSRF token every state-changing request must carry."""

    account: StaffAccount
    token: str
    csrf_token: str
    expires_at: datetime


def _account(user: StaffUser) -> StaffAccount:
    return StaffAccount(email=user.email, role=user.role, disabled=user.disabled, created_at=user.created_at)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(engine: Engine, email: str, role: str, password: str, *, clock: Clock = _now) -> StaffAccount:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise AccountError(f"{email!r} is not an e-mail address")
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; one of: {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password is shorter than {MIN_PASSWORD} characters")
    with session_scope(engine) as session:
        if repo.user_by_email(session, email) is not None:
            raise AccountError(f"an account {email} exists already")
        user = StaffUser(
            email=email, role=role, password_hash=_hasher.hash(password), disabled=False, created_at=clock()
        )
        repo.add_user(session, user)
        return _account(user)


def list_users(engine: Engine) -> tuple[StaffAccount, ...]:
    with Session(engine) as session:
        return tuple(_account(u) for u in repo.users(session))


def disable_user(engine: Engine, email: str) -> StaffAccount:
    """Disable an account and end its sessions at once."""
    with session_scope(engine) as session:
        user = repo.user_by_email(session, email)
        if user is None or user.id is None:
            raise AccountError(f"no account {email}")
        repo.disable_user(session, user.id)
        repo.delete_sessions_of(session, user.id)
        return StaffAccount(email=user.email, role=user.role, disabled=True, created_at=user.created_at)


def sign_in(
    engine: Engine, email: str, password: str, *, previous_token: str | None = None, clock: Clock = _now
) -> SignedIn | None:
    """Check the password; on success a brand-new session (any previous one is ended). None: refused."""
    now = clock()
    with session_scope(engine) as session:
        user = repo.user_by_email(session, email.strip())
        stored = user.password_hash if user is not None else _DUMMY_HASH
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if user is None or user.id is None or user.disabled:
            return None
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
            session.add(user)
        if previous_token:
            repo.delete_session(session, _hash_token(previous_token))
        repo.delete_expired_sessions(session, now)
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        expires = now + SESSION_LIFETIME
        repo.add_session(
            session,
            StaffSession(
                token_hash=_hash_token(token),
                user_id=user.id,
                csrf_token=csrf,
                created_at=now,
                expires_at=expires,
            ),
        )
        return SignedIn(account=_account(user), token=token, csrf_token=csrf, expires_at=expires)


def session_for(engine: Engine, token: str | None, *, clock: Clock = _now) -> SignedIn | None:
    """The live session behind a cookie, or None (unknown, expired, or the account was disabled)."""
    if not token or len(token) > 128:
        return None
    with Session(engine) as session:
        found = repo.session_by_hash(session, _hash_token(token))
    if found is None:
        return None
    row, user = found
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
    if expires <= clock() or user.disabled:
        return None
    return SignedIn(account=_account(user), token=token, csrf_token=row.csrf_token, expires_at=expires)


def sign_out(engine: Engine, token: str | None) -> None:
    if not token:
        return
    with session_scope(engine) as session:
        repo.delete_session(session, _hash_token(token))
