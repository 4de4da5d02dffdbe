"""The processors' HTTP side: a JSON API over the client's calls, the web UI, ``/metrics``.

``cadenza processors run --http 127.0.0.1:8233`` serves it from a thread of the
engine's process. The API answers through Kafka like any client: describe,
signal, cancel and terminate are commands to the engine; list and count go to
the visibility projection; history is read from ``<ns>.history``. Its
:class:`~cadenza.client.Client` connects on the first API request, so an engine
whose page nobody opens pays nothing for it.

Routes (JSON unless noted; ``{id}`` is the URL-encoded workflow id)::

    GET  /                               the web UI (HTML)
    GET  /static/<file>                  its script and style
    GET  /metrics                        Prometheus text format
    GET  /api/v1/namespace               {"namespace", "version"}
    GET  /api/v1/workflows?query=&pageSize=&nextPageToken=
                                         {"executions": [...], "nextPageToken"}
    GET  /api/v1/workflow-count?query=   {"count"}
    GET  /api/v1/workflows/{id}?runId=   the run's description
    GET  /api/v1/workflows/{id}/history?runId=      {"events": [...]}
    POST /api/v1/workflows/{id}/signal     {"name", "input": [...], "runId"?}
    POST /api/v1/workflows/{id}/cancel     {"runId"?}
    POST /api/v1/workflows/{id}/terminate  {"reason"?, "runId"?}

Errors are ``{"error": {"code", "message"}}`` with 400 (``INVALID_ARGUMENT``),
404 (``NOT_FOUND``), 409 (``ALREADY_CLOSED``), 503 (``UNAVAILABLE``: Kafka or a
processor did not answer) or 500.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import mimetypes
import threading
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from cadenza import Settings, __version__
from cadenza.client import (
    CadenzaServiceError,
    Client,
    RPCTimeoutOrCancelledError,
    TransportError,
)
from cadenza.client._history import RunHistory, read_history
from cadenza.client._json import description_json, event_json, execution_json
from cadenza.runtime._prometheus import CONTENT_TYPE, bind_http_server
from cadenza.topics import history_topic

_log = logging.getLogger("cadenza.http")
_T = TypeVar("_T")

STATIC = Path(__file__).parent / "static"
_API = "/api/v1/"
_MAX_BODY = 1 << 20
_RPC_TIMEOUT = timedelta(seconds=10)
_HISTORY_TIMEOUT = 20.0
_HISTORIES_KEPT = 64
"""Runs whose history the API keeps, to read only what is new when asked again."""
_CODES = {
    "INVALID_ARGUMENT": HTTPStatus.BAD_REQUEST,
    "NOT_FOUND": HTTPStatus.NOT_FOUND,
    "ALREADY_CLOSED": HTTPStatus.CONFLICT,
    "ALREADY_STARTED": HTTPStatus.CONFLICT,
    "UNAVAILABLE": HTTPStatus.SERVICE_UNAVAILABLE,
}


class ApiError(Exception):
    """An answer other than 200: a code of :data:`_CODES` (or ``INTERNAL``) and a message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> HTTPStatus:
        return _CODES.get(self.code, HTTPStatus.INTERNAL_SERVER_ERROR)


class _ClientThread:
    """One event loop in a thread of its own, holding the API's :class:`Client`."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Client | None = None
        self._lock = threading.Lock()

    def run(self, call: Callable[[Client], Coroutine[Any, Any, _T]], timeout: float) -> _T:
        loop = self._start()
        future = asyncio.run_coroutine_threadsafe(self._call(call), loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise ApiError("UNAVAILABLE", f"no answer within {timeout:.0f} s") from None

    async def _call(self, call: Callable[[Client], Coroutine[Any, Any, _T]]) -> _T:
        if self._client is None:
            self._client = await Client.connect(settings=self._settings, rpc_timeout=_RPC_TIMEOUT)
        return await call(self._client)

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="cadenza-http-client", daemon=True
                ).start()
                self._loop = loop
            return self._loop

    def close(self) -> None:
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is None:
            return
        client = self._client
        if client is not None:
            try:
                asyncio.run_coroutine_threadsafe(client.close(), loop).result(10)
            except Exception:  # closing on the way out: nothing left to tell
                _log.debug("closing the HTTP API's client failed", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)


class HttpServer:
    """The API, the UI and ``/metrics`` on ``address``, served from a daemon thread.

    Example::

        server = HttpServer(settings, "127.0.0.1:8233", metrics=engine.metrics.render)
        server.start()   # the constructor raised OSError if the address is taken
        ...
        server.stop()
    """

    def __init__(
        self,
        settings: Settings,
        address: str,
        *,
        metrics: Callable[[], str] | None = None,
    ) -> None:
        self.settings = settings
        self._metrics = metrics
        self._clients = _ClientThread(settings)
        self._history_partitions: int | None = None
        self._histories: OrderedDict[tuple[str, str | None], RunHistory] = OrderedDict()
        self._histories_lock = threading.Lock()
        self._httpd = bind_http_server(address, _handler_for(self))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        host = str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="cadenza-http", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(10)
        self._httpd.server_close()
        self._clients.close()

    # -- the routes ------------------------------------------------------------------

    def metrics_text(self) -> str:
        return self._metrics() if self._metrics is not None else ""

    def api_get(self, parts: list[str], query: dict[str, str]) -> Any:
        if parts == ["namespace"]:
            return {"namespace": self.settings.namespace, "version": __version__}
        if parts == ["workflows"]:
            return self._list(query)
        if parts == ["workflow-count"]:
            text = query.get("query", "")
            count = self._clients.run(lambda c: c.count_workflows(text), 15)
            return {"count": count.count}
        if len(parts) == 2 and parts[0] == "workflows":
            return self._describe(parts[1], query.get("runId") or None)
        if len(parts) == 3 and parts[0] == "workflows" and parts[2] == "history":
            return self._history(parts[1], query.get("runId") or None)
        raise ApiError("NOT_FOUND", f"no such API path: {_API}{'/'.join(parts)}")

    def api_post(self, parts: list[str], body: dict[str, Any]) -> Any:
        if len(parts) != 3 or parts[0] != "workflows":
            raise ApiError("NOT_FOUND", f"no such API path: {_API}{'/'.join(parts)}")
        workflow_id, action = parts[1], parts[2]
        run_id = body.get("runId") or None
        if run_id is not None and not isinstance(run_id, str):
            raise ApiError("INVALID_ARGUMENT", "runId must be a string")
        if action == "signal":
            name = body.get("name")
            args = body.get("input", [])
            if not isinstance(name, str) or not name:
                raise ApiError("INVALID_ARGUMENT", 'give the signal\'s "name" (a string)')
            if not isinstance(args, list):
                raise ApiError("INVALID_ARGUMENT", '"input" must be a JSON array of arguments')

            async def signal(c: Client) -> None:
                await c.get_workflow_handle(workflow_id, run_id=run_id).signal(name, args=args)

            self._clients.run(signal, 15)
        elif action == "cancel":
            self._clients.run(
                lambda c: c.get_workflow_handle(workflow_id, run_id=run_id).cancel(), 15
            )
        elif action == "terminate":
            reason = body.get("reason") or ""
            if not isinstance(reason, str):
                raise ApiError("INVALID_ARGUMENT", '"reason" must be a string')
            self._clients.run(
                lambda c: c.get_workflow_handle(workflow_id, run_id=run_id).terminate(
                    reason=reason or "terminated from the web UI"
                ),
                15,
            )
        else:
            raise ApiError("NOT_FOUND", f"no action {action!r}: use signal, cancel or terminate")
        return {}

    def _list(self, query: dict[str, str]) -> Any:
        text = query.get("query", "")
        try:
            size = int(query.get("pageSize", "50"))
        except ValueError:
            raise ApiError("INVALID_ARGUMENT", "pageSize must be a whole number") from None
        if not 1 <= size <= 1000:
            raise ApiError("INVALID_ARGUMENT", "pageSize must be between 1 and 1000")
        try:
            token = base64.urlsafe_b64decode(query.get("nextPageToken", ""))
        except ValueError:
            raise ApiError("INVALID_ARGUMENT", "nextPageToken is not one this API gave") from None

        async def page(c: Client) -> Any:
            pages = c.list_workflows(text or None, page_size=size, next_page_token=token)
            await pages.fetch_next_page()
            return {
                "executions": [execution_json(e) for e in pages.current_page or []],
                "nextPageToken": base64.urlsafe_b64encode(pages.next_page_token or b"").decode(),
            }

        return self._clients.run(page, 15)

    def _describe(self, workflow_id: str, run_id: str | None) -> Any:
        async def describe(c: Client) -> Any:
            d = await c.get_workflow_handle(workflow_id, run_id=run_id).describe()
            return description_json(d.raw_description, execution_json(d))

        return self._clients.run(describe, 15)

    def _history(self, workflow_id: str, run_id: str | None) -> Any:
        if self._history_partitions is None:

            async def partitions(c: Client) -> int:
                return c.transport.partitions_of(history_topic(self.settings))

            self._history_partitions = self._clients.run(partitions, 15)
        # The page asks again every few seconds while a run is open: keep what was
        # read, and read only the records written since (see read_history).
        key = (workflow_id, run_id)
        with self._histories_lock:
            since = self._histories.pop(key, None)
        history = read_history(
            self.settings,
            workflow_id,
            run_id,
            partitions=self._history_partitions,
            timeout=_HISTORY_TIMEOUT,
            since=since,
        )
        events = list(history.events)
        with self._histories_lock:
            self._histories[key] = history
            while len(self._histories) > _HISTORIES_KEPT:
                self._histories.popitem(last=False)
        return {"events": [event_json(e) for e in events]}


def _handler_for(server: HttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = f"cadenza/{__version__}"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            _log.debug("%s %s", self.address_string(), format % args)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            path = url.path
            if path in ("/", "/index.html"):
                self._file(STATIC / "index.html")
            elif path.startswith("/static/"):
                name = unquote(path[len("/static/") :])
                target = (STATIC / name).resolve()
                if STATIC.resolve() not in target.parents:
                    self._json(HTTPStatus.NOT_FOUND, _error("NOT_FOUND", "no such file"))
                else:
                    self._file(target)
            elif path == "/metrics":
                self._send(
                    HTTPStatus.OK,
                    server.metrics_text().encode(),
                    CONTENT_TYPE,
                )
            elif path.startswith(_API):
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                self._api(lambda: server.api_get(_parts(path), query))
            else:
                self._json(HTTPStatus.NOT_FOUND, _error("NOT_FOUND", f"no such page: {path}"))

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            if not path.startswith(_API):
                self._json(HTTPStatus.NOT_FOUND, _error("NOT_FOUND", f"no such page: {path}"))
                return
            self._api(lambda: server.api_post(_parts(path), self._body()))

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            if length > _MAX_BODY:
                raise ApiError("INVALID_ARGUMENT", f"the body is over {_MAX_BODY} bytes")
            raw = self.rfile.read(length) if length else b""
            if not raw.strip():
                return {}
            try:
                body = json.loads(raw)
            except ValueError as exc:
                raise ApiError("INVALID_ARGUMENT", f"the body is not JSON: {exc}") from None
            if not isinstance(body, dict):
                raise ApiError("INVALID_ARGUMENT", "the body must be a JSON object")
            return body

        def _api(self, answer: Callable[[], Any]) -> None:
            try:
                result = answer()
            except ApiError as exc:
                self._json(exc.status, _error(exc.code, exc.message))
            except CadenzaServiceError as exc:
                error = ApiError(exc.code or "INTERNAL", exc.message)
                self._json(error.status, _error(error.code, error.message))
            except (RPCTimeoutOrCancelledError, TransportError) as exc:
                self._json(
                    HTTPStatus.SERVICE_UNAVAILABLE,
                    _error(
                        "UNAVAILABLE",
                        f"{exc} (is `cadenza processors run` running for namespace "
                        f"{server.settings.namespace!r}, with its visibility processor?)",
                    ),
                )
            except Exception as exc:  # the page shows it; the log keeps the trace
                _log.exception("HTTP API error on %s", self.path)
                self._json(
                    HTTPStatus.INTERNAL_SERVER_ERROR,
                    _error("INTERNAL", f"{type(exc).__name__}: {exc}"),
                )
            else:
                self._json(HTTPStatus.OK, result)

        def _json(self, status: HTTPStatus, value: Any) -> None:
            body = json.dumps(value, default=str).encode()
            self._send(status, body, "application/json")

        def _file(self, path: Path) -> None:
            if not path.is_file():
                self._json(HTTPStatus.NOT_FOUND, _error("NOT_FOUND", f"no such file: {path.name}"))
                return
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if kind.startswith("text/") or kind.endswith("javascript"):
                kind += "; charset=utf-8"
            self._send(HTTPStatus.OK, path.read_bytes(), kind)

        def _send(self, status: HTTPStatus, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

    return Handler


def _parts(path: str) -> list[str]:
    return [unquote(p) for p in path[len(_API) :].split("/") if p]


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
