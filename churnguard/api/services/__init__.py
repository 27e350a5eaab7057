"""The reads and writes behind the API and the dashboard: SQL scoped by :class:`churnguard.auth.Scope`.

Route handlers (``churnguard.api.routes``) and pages (``churnguard.web.pages``) hold no SQL; they
call these functions, which return plain JSON-ready dicts and lists.
"""
