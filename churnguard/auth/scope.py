"""Branch scope of a caller, as SQL that every query of the API and the dashboard is built with.

The caller's *scope* is their branch's subtree (every branch below it, itself included); an admin's
is the whole tree.  It is a recursive CTE over ``branches``::

    WITH RECURSIVE scope_branches(branch_id) AS (
      SELECT branch_id FROM branches
      WHERE branch_id = $scope_branch OR ($scope_branch IS NULL AND parent_id IS NULL)
      UNION
      SELECT b.branch_id FROM branches b JOIN scope_branches s ON b.parent_id = s.branch_id)

and a query keeps a row only when its branch is in it — inside the query, before any count,
sort, limit or export, never by filtering a result afterwards:

- customers (and everything hanging off a customer: scores, value, events, tickets …):
  ``c.branch_id IN (SELECT branch_id FROM scope_branches)``; for an **account manager** also
  ``c.owner_id = $scope_user OR`` a case on the customer that they own;
- cases: ``k.branch_id IN (SELECT branch_id FROM scope_branches)``; for an account manager also
  ``k.owner_id = $scope_user``, or ``k.owner_id IS NULL`` for the open cases of the pool they may claim.

``UNION`` (not ``UNION ALL``) makes the recursion stop even on a damaged tree with a cycle.
Out-of-scope ids answer 404 like ids that do not exist, so a guess learns nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from churnguard.auth.errors import NotFoundError
from churnguard.auth.users import User
from churnguard.store.connection import Store

SCOPE_CTE = """scope_branches(branch_id) AS (
  SELECT branch_id FROM branches
  WHERE branch_id = CAST($scope_branch AS VARCHAR) OR (CAST($scope_branch AS VARCHAR) IS NULL AND parent_id IS NULL)
  UNION
  SELECT b.branch_id FROM branches b JOIN scope_branches s ON b.parent_id = s.branch_id
)"""

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def bind(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``params`` that ``sql`` names (``$name``): DuckDB refuses unused parameters."""
    used = set(_PARAM.findall(sql))
    missing = used - params.keys()
    if missing:
        raise KeyError(f"SQL parameters without a value: {', '.join(sorted(missing))}")
    return {k: v for k, v in params.items() if k in used}


@dataclass(frozen=True)
class Scope:
    """What a caller may see: the subtree of ``branch_id`` (``None``: every branch) and, with
    ``own_only`` (account managers), only their own customers and cases."""

    user_id: str
    role: str
    branch_id: str | None
    own_only: bool = False

    @classmethod
    def of(cls, user: User) -> Scope:
        if user.role == "admin":
            return cls(user.user_id, user.role, None, False)
        return cls(user.user_id, user.role, user.branch_id or "\x00no-branch", user.role == "account_manager")

    # -- SQL -------------------------------------------------------------------------------------
    @property
    def params(self) -> dict[str, Any]:
        return {"scope_branch": self.branch_id, "scope_user": self.user_id}

    def with_(self, *ctes: str) -> str:
        """``WITH RECURSIVE scope_branches AS (…)[, more CTEs]`` to start a query with."""
        return "WITH RECURSIVE " + ",\n".join((SCOPE_CTE, *ctes))

    def customer_filter(self, alias: str = "c") -> str:
        """A condition keeping the rows of ``customers`` (aliased ``alias``) in scope."""
        cond = f"{alias}.branch_id IN (SELECT branch_id FROM scope_branches)"
        if self.own_only:
            cond += (
                f" AND ({alias}.owner_id = $scope_user OR EXISTS (SELECT 1 FROM cases own_k"
                f" WHERE own_k.customer_id = {alias}.customer_id AND own_k.owner_id = $scope_user))"
            )
        return cond

    def case_filter(self, alias: str = "k", *, pool: bool = True) -> str:
        """A condition keeping the rows of ``cases`` (aliased ``alias``) in scope; an account manager
        sees their own cases and (with ``pool``) the unowned open ones of their subtree."""
        cond = f"{alias}.branch_id IN (SELECT branch_id FROM scope_branches)"
        if self.own_only:
            mine = f"{alias}.owner_id = $scope_user"
            if pool:
                mine = f"({mine} OR ({alias}.owner_id IS NULL AND {alias}.closed_at IS NULL))"
            cond += f" AND {mine}"
        return cond

    def run(self, store: Store, sql: str, params: dict[str, Any] | None = None) -> Any:
        """Execute ``sql`` with the scope's parameters and ``params`` (only those it names are bound)."""
        values = {**self.params, **(params or {})}
        return store.execute(sql, bind(sql, values))

    # -- branches --------------------------------------------------------------------------------
    def branch_ids(self, store: Store) -> list[str]:
        """The branches of the subtree (from the same CTE the queries use)."""
        rows = self.run(store, f"{self.with_()} SELECT branch_id FROM scope_branches ORDER BY branch_id").fetchall()
        return [r[0] for r in rows]

    def contains_branch(self, store: Store, branch_id: str) -> bool:
        sql = f"{self.with_()} SELECT count(*) FROM scope_branches WHERE branch_id = $branch"
        return bool(self.run(store, sql, {"branch": branch_id}).fetchone()[0])

    def narrow(self, store: Store, branch_id: str | None) -> Scope:
        """The scope limited to ``branch_id``'s subtree, which must lie inside this one (else 404)."""
        if branch_id is None or branch_id == self.branch_id:
            return self
        if not self.contains_branch(store, branch_id):
            raise NotFoundError(f'branch "{branch_id}": not found.')
        return replace(self, branch_id=branch_id)

    @property
    def metrics_branch(self) -> str | None:
        """The ``branch`` argument for the :mod:`churnguard.metrics` functions (``None``: the whole company).

        They restrict every count to that subtree in their own SQL
        (:func:`churnguard.metrics.scope.customer_scope_sql`).
        """
        return self.branch_id
