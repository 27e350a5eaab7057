"""The API's routers, one per area; each handler parses, calls a service function and returns JSON."""
