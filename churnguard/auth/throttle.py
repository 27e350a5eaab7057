"""Login throttling: too many failed logins for one user name lock that name for a while.

Rule (the settings are the constants below): when ``audit_log`` holds at least
:data:`MAX_FAILED_LOGINS` rows ``login.failure`` for a user name within the last
:data:`FAILURE_WINDOW`, a login attempt for that name is refused with 429
(:class:`~churnguard.auth.errors.TooManyAttemptsError`) *before* the password is checked, so a
correct password is refused too, and a ``login.locked`` row is written.  The window slides: the
name opens again when the oldest of those failures is older than the window.  Refused attempts
(``login.locked``) do not count as failures, so hammering a locked name does not extend the lock.
A success does not reset earlier failures.  Unknown names are throttled the same way (the answer
does not tell whether the user exists).
"""

from __future__ import annotations

import datetime as dt

from churnguard.auth.errors import TooManyAttemptsError
from churnguard.store.connection import Store

#: Failed logins for one user name within :data:`FAILURE_WINDOW` that lock the name.
MAX_FAILED_LOGINS = 5
#: The sliding window in which failures are counted (and for which the name stays locked).
FAILURE_WINDOW = dt.timedelta(minutes=15)
#: The message of the refusal, by language (``en``, ``zh``).
LOCKED_MESSAGES: dict[str, str] = {
    "en": "Too many failed logins for this user name; try again in {minutes} minutes.",
    "zh": "该用户名登录失败次数过多,请 {minutes} 分钟后再试。",
}


def locked_for(store: Store, user_id: str, *, now: dt.datetime | None = None) -> dt.timedelta | None:
    """How long ``user_id`` stays locked (``None`` when it is not locked).

    Locked when ``count(login.failure in (now − FAILURE_WINDOW, now]) ≥ MAX_FAILED_LOGINS``; it
    opens at ``t_k + FAILURE_WINDOW``, where ``t_k`` is the k-th most recent failure, k = MAX_FAILED_LOGINS.
    """
    stamp = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    row = store.execute(
        """
        SELECT count(*), max(CASE WHEN rn = ? THEN ts END)
        FROM (
          SELECT ts, row_number() OVER (ORDER BY ts DESC) AS rn
          FROM audit_log
          WHERE action = 'login.failure' AND user_id = ? AND ts > ? AND ts <= ?
        ) failures
        """,
        [MAX_FAILED_LOGINS, user_id, stamp - FAILURE_WINDOW, stamp],
    ).fetchone()
    if row is None or int(row[0]) < MAX_FAILED_LOGINS:
        return None
    return max(row[1] + FAILURE_WINDOW - stamp, dt.timedelta(seconds=1))


def check_not_locked(store: Store, user_id: str, *, lang: str = "en", now: dt.datetime | None = None) -> None:
    """Raise :class:`TooManyAttemptsError` when ``user_id`` is locked (see :func:`locked_for`)."""
    left = locked_for(store, user_id, now=now)
    if left is not None:
        minutes = max(1, -(-int(left.total_seconds()) // 60))
        template = LOCKED_MESSAGES.get(lang, LOCKED_MESSAGES["en"])
        raise TooManyAttemptsError(template.format(minutes=minutes))
