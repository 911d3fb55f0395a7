"""Database errors, classified once where they enter (psycopg), into our own types.

``is_retryable(exc)`` is the single policy question the rest of the system asks: a lost
connection, a server shutting down, a serialization failure or a deadlock are worth retrying;
an integrity violation is an idempotency hit and never is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg_errors


class DatabaseError(Exception):
    """Base class for every database failure that leaves ``persistence``."""


class DatabaseUnavailable(DatabaseError):
    """The server cannot be reached or went away (retryable)."""

    dependency = "database"  # a supervisor holds the restart of a child that failed on this until it is back


class TransientDatabaseError(DatabaseError):
    """Serialization failure, deadlock or admin shutdown: the transaction may be retried."""


class IntegrityViolation(DatabaseError):
    """A constraint said no: an idempotency guard fired. Never retried."""


class DatabaseBug(DatabaseError):
    """Anything else: a programming error or an unexpected server answer."""


_TRANSIENT = (
    pg_errors.SerializationFailure,
    pg_errors.DeadlockDetected,
    pg_errors.AdminShutdown,
    pg_errors.CrashShutdown,
    pg_errors.CannotConnectNow,
)


def classify(exc: psycopg.Error) -> DatabaseError:
    """Translate a psycopg exception into one of our types (the message keeps SQLSTATE)."""
    state = getattr(exc, "sqlstate", None) or "-"
    text = f"{type(exc).__name__} [{state}]: {str(exc).strip()}"
    if isinstance(exc, _TRANSIENT):
        return TransientDatabaseError(text)
    if isinstance(exc, psycopg.IntegrityError):
        return IntegrityViolation(text)
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return DatabaseUnavailable(text)
    return DatabaseBug(text)


def classified(exc: BaseException) -> BaseException:
    """``exc`` as the product reports it: a raw psycopg error becomes our database error type (so a lost
    database is recognised as such, and a supervisor holds a restart until it is back); anything
    else is itself."""
    return classify(exc) if isinstance(exc, psycopg.Error) else exc


def is_retryable(exc: BaseException) -> bool:
    """True for failures where trying again later can succeed."""
    return isinstance(exc, DatabaseUnavailable | TransientDatabaseError)


@contextmanager
def translated() -> Iterator[None]:
    """Re-raise any psycopg error inside the block as our own type (``from`` the original)."""
    try:
        yield
    except psycopg.Error as exc:
        raise classify(exc) from exc
