"""Why an event could not be handled, decided in one place.

Two kinds of failure need opposite treatment:
- **transient**: a dependency is away (PostgreSQL restarting, its socket gone, a connection cut,
  a timeout, a serialisation conflict). The event is fine; retrying later will work. Such an
  event must never reach the dead-letter topic: the consumer holds it and retries until the
  dependency is back.
- **invalid**: the event itself cannot be handled (it does not decode, its payload fails
  validation, a handler says it is invalid, the database refuses its data). Retrying changes
  nothing; after the configured attempts it goes to `<topic>.dlq`.

An error that is neither recognisably transient nor declared invalid (a handler's ValueError,
a constraint violation) is treated as a property of the event, like today, but only after the
consumer has checked that the database answers: an unrecognised error while the database is
down is transient.
"""

from __future__ import annotations

import enum

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError
from sqlalchemy import exc as sa_exc


class Failure(enum.Enum):
    TRANSIENT = "transient"
    INVALID = "invalid"
    UNKNOWN = "unknown"


class InvalidEvent(Exception):
    """Raised by decoding or by a handler: this event can never be handled as it is."""


# SQLSTATE classes and codes meaning "try again later", never "this data is wrong":
# 08 connection exception, 53 insufficient resources, 57P01-57P05 shutdown / starting up /
# idle-session timeouts, 40001 serialization failure, 40P01 deadlock, 55P03 lock not available.
_TRANSIENT_CLASSES = ("08", "53")
_TRANSIENT_CODES = {"57P01", "57P02", "57P03", "57P04", "57P05", "40001", "40P01", "55P03"}
# 22 data exception (bad text, NUL, out of range), 23 integrity violation: the event's data.
_INVALID_CLASSES = ("22", "23")

_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    OSError,  # ConnectionRefusedError, FileNotFoundError on the socket, TimeoutError, …
    sa_exc.TimeoutError,  # pool exhausted while connections are being re-established
    sa_exc.DisconnectionError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, what SQLAlchemy wraps (`orig`) and its causes, without cycles."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo.extend([getattr(current, "orig", None), current.__cause__, current.__context__])
    return seen


def _sqlstate(exc: BaseException) -> str | None:
    for attr in ("sqlstate", "pgcode"):
        value = getattr(exc, attr, None)
        if isinstance(value, str) and len(value) == 5:
            return value
    return None


def classify(exc: BaseException) -> Failure:
    chain = _chain(exc)
    if any(isinstance(e, InvalidEvent) for e in chain):
        return Failure.INVALID
    for e in chain:
        if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
            return Failure.TRANSIENT
        state = _sqlstate(e)
        if state and (state.startswith(_TRANSIENT_CLASSES) or state in _TRANSIENT_CODES):
            return Failure.TRANSIENT
        if isinstance(e, _TRANSIENT_TYPES):
            return Failure.TRANSIENT
        # asyncpg's connection errors (ConnectionDoesNotExistError, "connection is closed"),
        # by module and name so this module does not depend on the driver's internals.
        kind = type(e)
        if kind.__module__.startswith("asyncpg") and (
            "Connection" in kind.__name__ or kind.__name__ == "InterfaceError"
        ):
            return Failure.TRANSIENT
        if isinstance(e, sa_exc.InterfaceError | sa_exc.OperationalError) and state is None:
            return Failure.TRANSIENT  # the driver could not talk to the server at all
    for e in chain:
        state = _sqlstate(e)
        if state and state.startswith(_INVALID_CLASSES):
            return Failure.INVALID
    return Failure.UNKNOWN


def describe(exc: BaseException) -> str:
    """A short reason for logs and `dlq_reason`: the driver's message, never SQLAlchemy's
    rendering of the statement and its parameters."""
    inner = getattr(exc, "orig", None)
    if isinstance(exc, sa_exc.StatementError) and inner is not None:
        return f"{type(exc).__name__}: {type(inner).__name__}: {inner}"[:4000]
    return f"{type(exc).__name__}: {exc}"[:4000]
