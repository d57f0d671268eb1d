"""The web page and HTTP API (``artstyle serve``): see :func:`artstyle.web.app.create_app`."""
