"""The gateway's routers, one module per route family; :func:`pincompute.api.app.create_app`
includes each."""
