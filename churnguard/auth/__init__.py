"""Users, roles, API tokens, sessions, CSRF and branch scope (docs/api.md, "Access").

The API and the dashboard call these; analytics code never does.
"""

from churnguard.auth.errors import AccessDeniedError, AuthenticationError, CsrfError, NotFoundError, UserError
from churnguard.auth.scope import Scope
from churnguard.auth.users import ROLES, User, add_user, authenticate, disable_user, ensure_demo_users, list_users

__all__ = [
    "ROLES",
    "AccessDeniedError",
    "AuthenticationError",
    "CsrfError",
    "NotFoundError",
    "Scope",
    "User",
    "UserError",
    "add_user",
    "authenticate",
    "disable_user",
    "ensure_demo_users",
    "list_users",
]
