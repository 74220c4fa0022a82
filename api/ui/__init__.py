"""The web UI at /ui: server-rendered pages whose scripts call /v1 with the browser's session
cookie (docs/ui.md). It adds no data route of its own: everything it shows or changes goes
through /v1's checks."""

from api.ui.pages import mount

__all__ = ["mount"]
