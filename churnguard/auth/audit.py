"""The audit log (``audit_log``, schema v4): who did what, when, from where.

Recorded: logins (``login.success``, ``login.failure``, ``login.locked``), logouts, API tokens issued, exports
(``export.at_risk``), case changes (``case.claim``, ``case.update``, ``case.assign``, ``case.recycle``),
campaigns started and user changes made through the CLI.  ``detail`` is a short JSON text.
Passwords and tokens are never written.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from churnguard.store.connection import Store


def record(
    store: Store,
    action: str,
    *,
    user_id: str | None,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    ip: str | None = None,
    now: dt.datetime | None = None,
) -> None:
    """Append one row to ``audit_log``."""
    stamp = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    text = json.dumps(detail, ensure_ascii=False, default=str, sort_keys=True) if detail else None
    store.execute(
        "INSERT INTO audit_log (ts, user_id, action, target, detail, ip) VALUES (?, ?, ?, ?, ?, ?)",
        [stamp, user_id, action, target, text, ip],
    )


def recent(store: Store, *, limit: int = 100, action: str | None = None, user_id: str | None = None) -> list[dict]:
    """The latest audit rows, newest first."""
    where, params = [], []
    if action is not None:
        where.append("action = ?")
        params.append(action)
    if user_id is not None:
        where.append("user_id = ?")
        params.append(user_id)
    sql = "SELECT ts, user_id, action, target, detail, ip FROM audit_log"
    if where:
        sql += " WHERE " + " AND ".join(where)
    cur = store.execute(sql + " ORDER BY ts DESC LIMIT ?", [*params, int(limit)])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
