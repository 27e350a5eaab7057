"""Branch scope: a branch's subtree, and the roll-up of customers to a branch's children.

Head office sees the totals and each province; a province sees its cities.  Both come from
one closure of the branch tree (every branch with each of its ancestors, itself included),
computed in the engine with a recursive query.
"""

from __future__ import annotations

from churnguard.errors import ConfigError
from churnguard.store.connection import Store

CLOSURE_SQL = """
WITH RECURSIVE closure(branch_id, ancestor_id, depth) AS (
  SELECT branch_id, branch_id, 0 FROM branches
  UNION ALL
  SELECT c.branch_id, b.parent_id, c.depth + 1
  FROM closure c JOIN branches b ON b.branch_id = c.ancestor_id
  WHERE b.parent_id IS NOT NULL AND c.depth < 64
)
SELECT branch_id, ancestor_id, depth FROM closure
"""


def root_branch(store: Store) -> str | None:
    row = store.execute("SELECT branch_id FROM branches WHERE parent_id IS NULL ORDER BY branch_id LIMIT 1").fetchone()
    return row[0] if row else None


def check_branch(store: Store, branch: str) -> None:
    """Raise a clear error for a branch id that is not in the tree."""
    if not store.execute("SELECT count(*) FROM branches WHERE branch_id = ?", [branch]).fetchone()[0]:
        known = [
            r[0] for r in store.execute("SELECT branch_id FROM branches ORDER BY level, branch_id LIMIT 8").fetchall()
        ]
        raise ConfigError(f'branch "{branch}": expected a branch id such as {", ".join(known)}; it is not in branches.')


def customer_scope_sql(branch: str | None) -> tuple[str, dict[str, object]]:
    """SQL selecting ``customer_id, child_branch`` for the customers in ``branch``'s subtree.

    ``child_branch`` is the child of ``branch`` whose subtree holds the customer (``branch``
    itself for customers attached to it directly) — the row a drill-down shows them in.
    Without a branch, every customer is in scope and ``child_branch`` is the root's child.
    """
    sql = f"""
    WITH closure AS ({CLOSURE_SQL}),
    top AS (
      SELECT coalesce(CAST($branch AS VARCHAR),
                      (SELECT branch_id FROM branches WHERE parent_id IS NULL ORDER BY branch_id LIMIT 1)) AS top
    ),
    branch_map AS (  -- every branch of the subtree -> the child of top that holds it (top itself for top)
      SELECT cl.branch_id,
             coalesce(max(CASE WHEN b.parent_id = top.top THEN cl.ancestor_id END), max(top.top)) AS child_branch
      FROM closure cl JOIN branches b ON b.branch_id = cl.ancestor_id, top
      WHERE cl.branch_id IN (SELECT x.branch_id FROM closure x, top t WHERE x.ancestor_id = t.top)
      GROUP BY cl.branch_id
    )
    SELECT c.customer_id, m.child_branch FROM customers c JOIN branch_map m ON m.branch_id = c.branch_id
    """
    return sql, {"branch": branch}
