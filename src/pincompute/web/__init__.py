"""The web console: a browser client of the gateway's public REST API and websockets.

Everything the console shows it reads in the browser with the user's own token, so it sees
exactly what the token allows; this package holds only its files (``static/``: plain ES modules,
a style sheet, and the vendored libraries ``make web-assets`` copies in) and the router that
serves them. The gateway mounts it in one line::

    app.include_router(console_router())
"""

from .serve import STATIC_DIR, console_router

__all__ = ["STATIC_DIR", "console_router"]
