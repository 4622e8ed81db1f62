"""Platform users: creation, passwords (scrypt via werkzeug), authentication."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from include.db.models import Role, Task, TaskStatus, User
from include.errors import Invalid
from include.params import ParamSpec, Values, param
from include.services.assignment import unassign_all

USERNAME_RE = re.compile(r"^[a-zA-Z0-9_.\-]{2,64}$")

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 10
# Compared against when the user does not exist, so both paths take the same time.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class UserError(Invalid):
    """Invalid user input; the message is safe to show."""


NEW_USERNAME = ParamSpec("username", "Username", "str", max_length=64, help="2-64 letters, digits, . _ -")
NEW_EMAIL = ParamSpec(
    "email", "Email", "str", max_length=255, help="annotations made in Label Studio are matched to users by email"
)
NEW_ROLE = ParamSpec("role", "Role", "choice", Role.ANNOTATOR.value, choices=tuple(r.value for r in Role))


@dataclass(frozen=True, kw_only=True)
class NewUser(Values):
    """An account to create (its password is generated and shown once)."""

    username: str = param(NEW_USERNAME)
    email: str = param(NEW_EMAIL)
    role: str = param(NEW_ROLE)


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")


def create_user(session: Session, username: str, email: str, password: str, role: Role = Role.ANNOTATOR) -> User:
    """Create a user; raises UserError for bad or taken names and weak passwords."""
    username = username.strip()
    email = email.strip().lower()
    if not USERNAME_RE.match(username):
        raise UserError("a username is 2-64 letters, digits, dots, dashes or underscores")
    if not EMAIL_RE.match(email):
        raise UserError("enter a valid email address")
    validate_password(password)
    taken = session.scalar(
        select(User.id).where(or_(func.lower(User.username) == username.lower(), User.email == email))
    )
    if taken is not None:
        raise UserError("that username or email is already in use")
    user = User(username=username, email=email, password_hash=generate_password_hash(password), role=Role(role))
    session.add(user)
    session.flush()
    return user


def set_password(user: User, password: str) -> None:
    """New password; every session, remember cookie and API token of the user ends with the old one."""
    validate_password(password)
    user.password_hash = generate_password_hash(password)
    user.end_sessions()


def set_active(session: Session, user: User, active: bool) -> int:
    """(De)activate an account. Deactivation ends its sessions and returns its unlabeled tasks
    to the pool, so nobody waits on someone who left; returns how many tasks went back."""
    user.active = active
    if active:
        return 0
    user.end_sessions()
    return unassign_all(session, user.id)


def pending_counts(session: Session) -> dict[int, int]:
    """Assigned, still unlabeled tasks per user id."""
    rows = session.execute(
        select(Task.assigned_to, func.count(Task.id))
        .where(Task.assigned_to.is_not(None), Task.status == TaskStatus.ASSIGNED)
        .group_by(Task.assigned_to)
    ).tuples()
    return {int(uid): int(n) for uid, n in rows if uid is not None}


def all_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.role, User.username)))


def find_user(session: Session, username: str) -> User | None:
    """The user with this name (any case); None for names no user can have (no query is made)."""
    username = username.strip()
    if not USERNAME_RE.match(username):
        return None
    return session.scalar(select(User).where(func.lower(User.username) == username.lower()))


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with these credentials, or None (same work either way)."""
    user = find_user(session, username)
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.active:
        return None
    return user


def annotators(session: Session) -> list[User]:
    return list(session.scalars(select(User).where(User.role == Role.ANNOTATOR, User.active).order_by(User.username)))
