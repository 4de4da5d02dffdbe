"""The processors' HTTP side: the JSON API, the web UI and Prometheus ``/metrics``.

``cadenza processors run`` serves them on ``CADENZA_HTTP_ADDRESS`` (default
``127.0.0.1:8233``); see :mod:`cadenza.processors.http._server` for the routes.
"""

from ._server import HttpServer

__all__ = ["HttpServer"]
