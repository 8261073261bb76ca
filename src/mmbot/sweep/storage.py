"""Where a study lives: a SQLite file in the output directory, or a shared PostgreSQL.

Both are optuna ``RDBStorage`` with a heartbeat, so a worker that dies mid-trial leaves a
trial that goes stale after the grace period; the next worker to look fails it and queues a
retry with the same parameters (``RetryHeartbeatStaleTrialCallback``).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

from mmbot.sweep.errors import StorageError

__all__ = ["STUDY_FILE", "default_url", "mask_url", "open_storage"]

STUDY_FILE = "study.sqlite3"
#: a trial whose worker is silent this many heartbeats is taken for dead
GRACE_HEARTBEATS = 3
#: retries of one dead trial before it stays failed (a trial that kills its worker each time)
MAX_RETRY = 3
#: concurrent first runs race on creating optuna's tables; the loser retries
_CREATE_ATTEMPTS = 3

_PASSWORD = re.compile(r"(://[^/:@]*:)[^@/]*@")


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (works on malformed URLs too)."""
    return _PASSWORD.sub(r"\1***@", url)


def default_url(out_dir: Path) -> str:
    """The study file inside the output directory."""
    return f"sqlite:///{(out_dir / STUDY_FILE).resolve()}"


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _normalize(url: str) -> tuple[str, dict[str, Any]]:
    """Check the scheme and return the URL SQLAlchemy takes, with engine options."""
    import sqlalchemy.engine  # noqa: PLC0415  (optional dependency, loaded on use)
    import sqlalchemy.exc  # noqa: PLC0415

    if url.startswith("postgres://"):  # libpq's alias; SQLAlchemy only knows postgresql://
        url = "postgresql://" + url[len("postgres://") :]
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError) as e:
        raise StorageError(f"bad storage URL {mask_url(url)!r}: {_first_line(e)}") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if not parsed.database:
            raise StorageError(
                f"bad storage URL {mask_url(url)!r}: no database name "
                "(postgresql://user@host:port/DBNAME)"
            )
        if parsed.drivername == "postgresql":
            # SQLAlchemy's default driver differs by version (psycopg2 before 2.1); use the
            # one the mmbot extra installs
            url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        # an unreachable server fails in seconds instead of the OS's minutes-long default
        return url, {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise StorageError(
                f"bad storage URL {mask_url(url)!r}: a sweep needs a file "
                "(sqlite:///path/to/study.sqlite3)"
            )
        parent = Path(parsed.database).parent
        if not parent.is_dir():
            raise StorageError(
                f"bad storage URL {mask_url(url)!r}: directory {parent} does not exist"
            )
        # workers on one machine share the file; wait for its lock rather than fail
        return url, {"connect_args": {"timeout": 60}}
    raise StorageError(
        f"unsupported storage URL {mask_url(url)!r}: use "
        "postgresql://user@host:port/db or sqlite:///path (or leave --storage "
        "out for a file in --out)"
    )


def open_storage(url: str, heartbeat_s: int) -> Any:
    """Return an optuna ``RDBStorage`` with heartbeat and retry of dead workers' trials.

    Raises
    ------
    StorageError
        For a malformed or unsupported URL, a missing driver or an unreachable database; the
        message carries the URL with its password masked.
    """
    import optuna  # noqa: PLC0415
    import sqlalchemy.exc  # noqa: PLC0415

    shown = mask_url(url)
    url, engine_kwargs = _normalize(url)
    for attempt in range(_CREATE_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                # heartbeat and the retry callback are marked experimental since optuna 2.x
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_s,
                    grace_period=GRACE_HEARTBEATS * heartbeat_s,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                        max_retry=MAX_RETRY
                    ),
                )
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as e:
            if attempt + 1 == _CREATE_ATTEMPTS:
                raise StorageError(f"cannot set up storage {shown}: {_first_line(e)}") from None
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as e:
            raise StorageError(f"cannot open storage {shown}: {_first_line(e)}") from None
        except ImportError as e:
            raise StorageError(
                f"cannot open storage {shown}: its database driver is "
                f"missing ({e}); pip install 'obcore[mmbot]'"
            ) from None
    raise AssertionError("unreachable")  # the loop returns or raises
