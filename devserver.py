"""Run Tessera locally with one command (SPEC §7): ``python devserver.py``.

* starts moto in server mode on 127.0.0.1 (a free port) as the embedded
  DynamoDB, Secrets Manager and SES, in a child process of its own (the app's
  threads and moto's would share one interpreter lock), over keep-alive
  connections, and points this process at it with dummy credentials
  (``AWS_ENDPOINT_URL``);
* creates the tables from ``chalicelib.storage.schema`` and loads a seed file
  (the demo account of ``seeds/demo.json`` by default);
* serves ``app.py`` on 127.0.0.1 through chalice.local, a thread per
  connection and a listen backlog of 128, with every error in the documented
  format (SPEC §8): RFC 9457 problem JSON, an HTML page on the web pages. A path
  no route matches is a 404 (not API Gateway's ``403 {"message": "Missing
  Authentication Token"}``); HEAD, unknown methods and methods a route lacks
  are a 405 with ``Allow`` (HEAD without a body); requests http.server refuses
  (oversized request lines or headers, malformed requests) get its status in
  the same format;
* bounds what one client can hold (``Limits``): each request, line, headers and
  body, is read within a timeout (else the connection closes; a late body is a
  408, one that ends early a 400), a body over 10 MB is a 413, and at most
  ``max_connections`` are served at once, a thread each (one more waits a moment
  for a free thread, then is a 503);
* runs the app's ``@app.schedule`` functions at their rate in a thread;
* keeps the mail: moto's SES is the stage's SES (the sender, ``TESSERA_MAIL_FROM``,
  verified at start); each mail is printed (to, subject, its links) as SES takes
  it and listed, newest first, at ``/_local/outbox`` (``/_local/outbox.json``).
  Those two paths are the runner's own, answered before the app is asked: the
  deployed app has no such route;
* stops cleanly (exit status 0) on SIGINT or SIGTERM within a few seconds,
  however many copies of the signal arrive (``make run`` forwards the group's
  SIGTERM) and whatever the clients are doing.

This file is not part of the Lambda package (only ``app.py`` and
``chalicelib/`` are).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import email
import email.policy
import functools
import io
import json
import logging
import os
import re
import shlex
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from chalice.app import Chalice, Rate, ScheduledEventConfig
from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    CustomLocalChalice,
    LambdaContext,
    LocalChalice,
    LocalDevServer,
    LocalGateway,
    LocalGatewayException,
    RouteMatcher,
)

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent
DEMO_SEED = ROOT / "seeds" / "demo.json"
DEFAULT_PORT = 8000
LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT = "123456789012"
DEMO_CLIENT_ID = "cf83e1357eefb8bd"

log = logging.getLogger("devserver")
# A stop waits this long at most for the servers and the schedules to end.
STOP_SECONDS = 5.0


# --------------------------------------------------------------------------
# HTTP: chalice.local, every error in the documented format
# --------------------------------------------------------------------------

# The web pages (SPEC §7): their errors are HTML pages, every other error problem JSON.
# socketserver listens with a backlog of 5, which resets connections beyond a
# handful of simultaneous clients; this holds a burst of well over 64.
LISTEN_BACKLOG = 128


@dataclass(frozen=True)
class Limits:
    """What one client may hold of the runner (flags and env in ``parse_args``)."""

    # Seconds to receive one request, line to body, and to send one answer; a
    # kept-alive connection idle this long is closed.
    request_timeout: float = 15.0
    # Connections served at once, a thread each.
    max_connections: int = 128
    # API Gateway's payload limit (10 MB).
    max_body: int = 10 * 1024 * 1024
    # How long an accepted connection waits for a free thread before its 503.
    queue_wait: float = 1.0


class DeadlineReader(io.RawIOBase):
    """A connection's reads, each bounded by what is left of the current request's
    deadline: a client sending a byte at a time cannot keep its thread past it
    (a plain socket timeout restarts with every byte)."""

    def __init__(self, sock: socket.socket, write_timeout: float) -> None:
        self.sock = sock
        self.write_timeout = write_timeout
        self.deadline = time.monotonic() + write_timeout

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request was not received in time")
        self.sock.settimeout(left)
        try:
            return self.sock.recv_into(buffer)
        finally:
            # Writing the answer has a timeout of its own.
            self.sock.settimeout(self.write_timeout)


def problem_body(status: int, title: str, detail: str) -> bytes:
    return json.dumps({"type": "about:blank", "title": title, "status": status,
                       "detail": detail}).encode("utf-8")


def is_page(path: str) -> bool:
    """A web page's path (with or without a query): its errors are HTML pages."""
    from chalicelib.web.errors import is_page as page_path

    return page_path(urlsplit(path).path)


def error_response(status: int, detail: str, path: str,
                   headers: Mapping[str, str] | None = None, *,
                   known_route: bool = False) -> tuple[dict[str, str], bytes]:
    """(headers, body) of an error: an HTML page on the pages, RFC 6749 §5.2 JSON on
    the OAuth endpoints that exist, else RFC 9457 problem JSON."""
    title = HTTPStatus(status).phrase
    if known_route and urlsplit(path).path.startswith("/oauth/") and not is_page(path):
        body = json.dumps({"error": "invalid_request", "error_description": detail}).encode("utf-8")
        return ({"Content-Type": "application/json", "Cache-Control": "no-store", "Pragma": "no-cache",
                 **(headers or {})}, body)
    if is_page(path):
        from chalicelib.web.page import message_page

        page = message_page(title, detail, status, headers=dict(headers or {}))
        return {str(k): str(v) for k, v in page.headers.items()}, str(page.body).encode("utf-8")
    return ({"Content-Type": "application/problem+json", "Cache-Control": "no-store", **(headers or {})},
            problem_body(status, title, detail))


class LocalError(LocalGatewayException):
    """An error the local gateway answers itself, in the documented format."""

    def __init__(self, status: int, detail: str, path: str,
                 headers: Mapping[str, str] | None = None, *, known_route: bool = False) -> None:
        super().__init__(*error_response(status, detail, path, headers, known_route=known_route))
        self.CODE = status


def route_not_found(path: str) -> LocalError:
    return LocalError(404, f"No resource at {urlsplit(path).path}", path)


def method_not_allowed(method: str, path: str, allowed: list[str] | None) -> LocalError:
    # RFC 9110 §15.5.6: a 405 names the methods the resource supports.
    headers = {"Allow": ", ".join(sorted(allowed))} if allowed else {}
    return LocalError(405, f"{method or 'This method'} is not allowed on {urlsplit(path).path}",
                      path, headers, known_route=True)


class ProblemGateway(LocalGateway):
    """chalice.local's API Gateway stand-in, answering errors in the documented format.

    chalice.local raises its 403 "Missing Authentication Token" from the
    ``ValueError`` the route matcher throws inside ``_generate_lambda_event``;
    raising our own gateway exception there replaces exactly that case. A
    method the route does not declare (HEAD included, as API Gateway does) is a
    405 here, before the app answers it in a format of its own.
    """

    def allowed_methods(self, path: str) -> list[str] | None:
        """The methods of the route ``path`` matches; None if none matches."""
        try:
            route = RouteMatcher(list(self._app_object.routes)).match_route(path).route
        except ValueError:
            return None
        return list(self._app_object.routes[route])

    def handle_request(self, method: str, path: str, headers: dict[str, Any],
                       body: bytes | None) -> dict[str, Any]:
        # A path starting "//" would parse as a network-path reference (RFC 3986
        # §4.2), its first segment taken for a host: route it as the one-slash path.
        result: dict[str, Any] = super().handle_request(method, re.sub("^/+", "/", path),
                                                        headers, body)
        return result

    def _generate_lambda_event(self, method: str, path: str, headers: dict[str, Any],
                               body: bytes | None) -> dict[str, Any]:
        try:
            event: dict[str, Any] = super()._generate_lambda_event(method, path, headers, body)
        except ValueError as exc:
            raise route_not_found(path) from exc
        allowed = list(self._app_object.routes[event["requestContext"]["resourcePath"]])
        # OPTIONS stays chalice.local's (CORS preflight).
        if method != "OPTIONS" and method not in allowed:
            raise method_not_allowed(method, path, allowed)
        return event


class ProblemRequestHandler(ChaliceRequestHandler):
    # An answer's headers and body go out at once: with Nagle's algorithm, a kept-alive
    # connection's next answer waited for the client's delayed ACK (40 ms).
    disable_nagle_algorithm = True

    def __init__(self, request: bytes, client_address: tuple[str, int], server: Any,
                 app_object: Chalice, config: Config) -> None:
        # ChaliceRequestHandler.__init__ with our gateway: the base class
        # handles the request inside its __init__, so the gateway comes first.
        self.gateway = ProblemGateway(app_object, config)
        self.local_gateway = self.gateway
        BaseHTTPRequestHandler.__init__(self, request, client_address, server)  # type: ignore[arg-type]

    server: LocalHTTPServer
    rfile: BinaryIO

    def setup(self) -> None:
        super().setup()
        self.reader = DeadlineReader(self.connection, self.server.limits.request_timeout)
        self.connection.settimeout(self.server.limits.request_timeout)
        self.rfile.close()
        self.rfile = io.BufferedReader(self.reader)

    def handle_one_request(self) -> None:
        # RFC 9110 §15.5.9: the server waits a bounded time for a complete request.
        self.reader.deadline = time.monotonic() + self.server.limits.request_timeout
        super().handle_one_request()

    def _refuse_body(self, status: int, detail: str) -> LocalError:
        # The body is not read to its end: the connection cannot carry another request.
        return LocalError(status, detail, self.path, {"Connection": "close"},
                          known_route=self.gateway.allowed_methods(self.path) is not None)

    def _parse_payload(self) -> tuple[dict[str, Any], bytes | None]:
        raw = self.headers.get("content-length", "0") or "0"
        if not raw.strip().isdigit():
            raise self._refuse_body(400, "Content-Length must be a non-negative integer")
        length, limit = int(raw), self.server.limits.max_body
        if length > limit:
            # RFC 9110 §15.5.14, before a byte of the body is read.
            raise self._refuse_body(413, f"The request body exceeds {limit} bytes")
        try:
            headers, body = super()._parse_payload()
        except TimeoutError as exc:
            raise self._refuse_body(408, "The request body was not received in time") from exc
        if len(body or b"") < length:
            raise self._refuse_body(400, "The request body ended before its Content-Length")
        return headers, body

    def _generic_handle(self) -> None:
        try:
            if self.server.outbox is not None and urlsplit(self.path).path in OUTBOX_PATHS:
                self._answer_outbox(self.server.outbox)
                return
            super()._generic_handle()
        except LocalError as exc:
            self.close_connection = True
            self._send_error_response(exc)

    def _answer_outbox(self, outbox: Callable[[], list[OutboxMail]]) -> None:
        """The runner's own page: the mails moto's SES took, newest first."""
        if self.command not in ("GET", "HEAD"):
            raise method_not_allowed(self.command, self.path, ["GET"])
        self._parse_payload()      # whatever body came is read, so the connection stays usable
        mails = outbox()
        if urlsplit(self.path).path.endswith(".json"):
            body = json.dumps({"mails": [m.as_dict() for m in mails]}).encode()
            kind = "application/json"
        else:
            from chalicelib.web.render import render

            body = render("local/outbox.html", mails=mails).encode()
            kind = "text/html; charset=utf-8"
        self._send_http_response_with_body(200, {"Content-Type": kind, "Cache-Control": "no-store"},
                                           body)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

    def _send_http_response_with_body(self, code: int, headers: dict[str, Any],
                                      body: str | bytes) -> None:
        if self.command != "HEAD":
            super()._send_http_response_with_body(code, headers, body)
            return
        # RFC 9110 §9.3.2: HEAD gets the headers of the answer, never its body
        # (a body would be read as the start of the next response).
        raw = body if isinstance(body, bytes) else body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
        self._send_headers(headers)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors http.server answers itself (an unknown method, an oversized request
        line or header, a malformed request), in the documented format, not its HTML."""
        path = getattr(self, "path", "") or ""
        headers: dict[str, str] = {}
        if code == HTTPStatus.NOT_IMPLEMENTED:
            # No do_<METHOD>: a method no route has (SPEC §8: 405).
            error = method_not_allowed(self.command, path,
                                       self.gateway.allowed_methods(path) if path else None)
            code, headers, body = error.CODE, dict(error.headers), error.body or b""
        else:
            headers, body = error_response(code, message or HTTPStatus(code).phrase, path,
                                           known_route=bool(path) and
                                           self.gateway.allowed_methods(path) is not None)
        self.log_error("code %d, message %s", code, message)
        if getattr(self, "request_version", "") in ("", "HTTP/0.9"):
            # An unreadable request line leaves http.server assuming HTTP/0.9,
            # which has no status line or headers: answer in HTTP/1.1.
            self.request_version = self.protocol_version
        self.send_response(code)
        for name, value in headers.items():
            self.send_header(name, value)
        # The request may not have been read to its end: do not reuse the connection.
        self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class LocalHTTPServer(ThreadingHTTPServer):
    """A thread per connection, at most ``limits.max_connections`` at once (daemon
    threads: a kept-alive browser connection never holds up a stop), and a
    listen backlog for bursts of clients."""

    daemon_threads = True
    # No list of threads to join at close, so finished threads are not kept either.
    block_on_close = False
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address: tuple[str, int], handler: Any, limits: Limits | None = None,
                 outbox: Callable[[], list[OutboxMail]] | None = None) -> None:
        self.limits = limits or Limits()
        # The local outbox's mails; None: the outbox paths are the app's (a 404).
        self.outbox = outbox
        self.slots = threading.BoundedSemaphore(self.limits.max_connections)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # On the accepting thread: a connection beyond the bound waits a moment
        # for a thread to finish, then is refused rather than given a new thread.
        if not self.slots.acquire(timeout=self.limits.queue_wait):
            self.refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def refuse(self, request: socket.socket) -> None:
        """RFC 9110 §15.6.4: 503 with Retry-After, sent without waiting on the client."""
        headers, body = error_response(503, "Too many connections at once; retry shortly", "",
                                       {"Retry-After": "1", "Connection": "close"})
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        try:
            request.setblocking(False)
            # What the client already sent, read (not waited for): closing on
            # unread bytes would reset the connection before it reads the 503.
            with contextlib.suppress(BlockingIOError):
                request.recv(65536)
            request.send(f"HTTP/1.1 503 Service Unavailable\r\n{head}Content-Length: {len(body)}\r\n\r\n"
                         .encode("latin-1") + body)
        except OSError:
            pass
        log.info("connection refused: %d connections already served", self.limits.max_connections)
        self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            # A client that went away (reset, broken pipe) is not the server's error.
            log.info("connection from %s ended: %s", client_address[0], type(error).__name__)
            return
        log.exception("request from %s failed", client_address[0])


def make_http_server(app: Chalice, port: int, host: str = HOST,
                     limits: Limits | None = None,
                     outbox: Callable[[], list[OutboxMail]] | None = None) -> LocalDevServer:
    """Bind chalice.local's server for ``app`` on ``host:port`` (0: any free port);
    with ``outbox``, it also serves the local outbox at ``/_local/outbox``."""
    if not isinstance(app, LocalChalice):
        # What chalice.local.create_local_server does: a thread-local
        # ``current_request``, since requests are served on several threads.
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
        app.__class__ = CustomLocalChalice
    config = Config.create(chalice_stage="local", app_name=app.app_name, lambda_timeout=60,
                           lambda_memory_size=512)
    return LocalDevServer(app, config, host, port, handler_cls=ProblemRequestHandler,
                          server_cls=functools.partial(LocalHTTPServer, limits=limits or Limits(),
                                                       outbox=outbox))


# --------------------------------------------------------------------------
# schedules
# --------------------------------------------------------------------------

_UNIT_SECONDS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
_RATE = re.compile(r"^\s*rate\(\s*(\d+)\s+([a-zA-Z]+)\s*\)\s*$")


def rate_seconds(expression: Rate | str | Any) -> int | None:
    """Seconds between runs of a Rate (object or ``rate(...)`` string); None for cron."""
    if isinstance(expression, Rate):
        value, unit = int(expression.value), str(expression.unit)
    elif isinstance(expression, str) and (m := _RATE.match(expression)):
        value, unit = int(m.group(1)), m.group(2)
    else:
        return None
    seconds = _UNIT_SECONDS.get(unit.lower())
    if seconds is None or value <= 0:
        return None
    return value * seconds


def scheduled_event(name: str, when: float) -> dict[str, Any]:
    """What EventBridge sends a scheduled Lambda (the fields chalice's CloudWatchEvent reads)."""
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
        "source": "aws.events", "account": LOCAL_ACCOUNT,
        "time": datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": LOCAL_REGION,
        "resources": [f"arn:aws:events:{LOCAL_REGION}:{LOCAL_ACCOUNT}:rule/{name}"],
        "detail": {},
    }


@dataclass
class Job:
    name: str
    every: int
    handler: Callable[[dict[str, Any], Any], Any]
    due: float


class Scheduler:
    """Invokes an app's scheduled functions at their rate, like EventBridge would.

    ``run_due(now)`` does the work and is what tests drive with their own
    clock; ``start()`` runs it on a thread until ``stop()``. The first run of a
    job is one period after start, as with a newly created EventBridge rule.
    Cron schedules are listed but not run locally.
    """

    def __init__(self, app: Chalice, *, now: Callable[[], float] = time.time) -> None:
        self.now = now
        self.jobs: list[Job] = []
        self.skipped: list[str] = []
        start = now()
        for source in app.event_sources:
            if not isinstance(source, ScheduledEventConfig):
                continue
            every = rate_seconds(source.schedule_expression)
            if every is None:
                self.skipped.append(source.name)
                continue
            self.jobs.append(Job(source.name, every, app.handler_map[source.name], start + every))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_due(self, now: float) -> list[str]:
        """Run every job whose time has come; returns the names run."""
        ran = []
        for job in self.jobs:
            if now < job.due:
                continue
            # Missed periods collapse into one run, as a rate rule would not queue them.
            while job.due <= now:
                job.due += job.every
            ran.append(job.name)
            context = LambdaContext(function_name=job.name, memory_size=512, max_runtime_ms=900_000)
            try:
                job.handler(scheduled_event(job.name, now), context)
                log.info("scheduled function %s ran", job.name)
            except Exception:
                # A failing job is reported and retried at its next period, as in Lambda.
                log.exception("scheduled function %s failed", job.name)
        return ran

    def next_due(self) -> float | None:
        return min((job.due for job in self.jobs), default=None)

    def _loop(self) -> None:
        while not self._stop.is_set():
            due = self.next_due()
            if due is None:
                return
            if self._stop.wait(max(0.0, due - self.now())):
                return
            self.run_due(self.now())

    def start(self) -> None:
        if self.jobs:
            self._thread = threading.Thread(target=self._loop, name="schedules", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


# --------------------------------------------------------------------------
# mail: moto's SES, printed and listed at /_local/outbox
# --------------------------------------------------------------------------

OUTBOX_PATH = "/_local/outbox"
OUTBOX_PATHS = (OUTBOX_PATH, OUTBOX_PATH + ".json")
# The local stage's sender (TESSERA_MAIL_FROM unless set): moto's SES, like SES,
# refuses a sender that is not a verified identity, so the runner verifies it.
LOCAL_MAIL_FROM = "Tessera <no-reply@tessera.localhost>"
_LINK = re.compile(r"https?://[^\s<>\"']+")


@dataclass(frozen=True)
class OutboxMail:
    """One mail moto's SES took, as the outbox shows it."""

    id: str
    sender: str
    to: tuple[str, ...]
    subject: str
    text: str
    html: str
    links: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "from": self.sender, "to": list(self.to), "subject": self.subject,
                "text": self.text, "html": self.html, "links": list(self.links)}


def outbox_mail(message: Any) -> OutboxMail:
    """A message of moto's SES backend: a raw MIME message (what the mailer sends:
    a text and an HTML body) or a simple one (body only)."""
    raw = getattr(message, "raw_data", None)
    if raw is None:
        body = str(message.body)
        to = tuple(message.destinations.get("ToAddresses", []))
        return OutboxMail(message.id, message.source, to, message.subject, body, "",
                          tuple(dict.fromkeys(_LINK.findall(body))))
    parsed = email.message_from_string(raw, policy=email.policy.default)
    bodies = {part.get_content_type(): str(part.get_content()) for part in parsed.walk()
              if not part.is_multipart() and part.get_content_maintype() == "text"}
    text, html = bodies.get("text/plain", ""), bodies.get("text/html", "")
    to = tuple(dict.fromkeys(address.addr_spec for header in parsed.get_all("To") or []
                             for address in header.addresses)) or tuple(message.destinations)
    return OutboxMail(message.id, str(parsed.get("From") or message.source), to,
                      str(parsed.get("Subject") or ""), text, html,
                      tuple(dict.fromkeys(_LINK.findall(text or html))))


def ses_backend() -> Any:
    """moto's SES of the local account and region (moto serves SESv2 from it too)."""
    from moto.ses.models import ses_backends

    return ses_backends[LOCAL_ACCOUNT][LOCAL_REGION]


def sent_mails() -> list[OutboxMail]:
    """Every mail sent since the runner started, newest first."""
    return [outbox_mail(m) for m in reversed(list(ses_backend().sent_messages))]


def mail_lines(mail: OutboxMail) -> str:
    lines = [f"mail to {', '.join(mail.to)}: {mail.subject}"]
    lines += [f"  link: {link}" for link in mail.links]
    return "\n".join(lines)


class Announcing(list[Any]):
    """moto's list of sent messages, printing each mail as SES appends it."""

    def __init__(self, items: list[Any], announce: Callable[[str], None]) -> None:
        super().__init__(items)
        self.announce = announce

    def append(self, item: Any) -> None:
        super().append(item)
        try:
            self.announce(mail_lines(outbox_mail(item)))
        except Exception:      # a mail the outbox cannot read is still sent
            log.exception("could not print a sent mail")


def announce_mails(announce: Callable[[str], None]) -> None:
    """Print every mail moto's SES (of this process) takes from now on."""
    backend = ses_backend()
    backend.sent_messages = Announcing(list(backend.sent_messages), announce)


def verify_sender(sender: str) -> None:
    """Verify the sender in the SES this process talks to (moto's, as SES would refuse it)."""
    from chalicelib.storage.dynamo import aws_client

    aws_client("sesv2").create_email_identity(EmailIdentity=parseaddr(sender)[1])


def keep_outbox(sender: str, announce: Callable[[str], None]) -> None:
    """Verify the sender in moto's SES and print every mail it takes from now on
    (moto in this process)."""
    verify_sender(sender)
    announce_mails(announce)


# The AWS child's own path: the mails its SES took, newest first, as JSON.
SENT_MAILS_PATH = "/_local/sent-mails"


def mail_from_dict(data: Mapping[str, Any]) -> OutboxMail:
    return OutboxMail(str(data["id"]), str(data["from"]), tuple(data["to"]), str(data["subject"]),
                      str(data["text"]), str(data["html"]), tuple(data["links"]))


def remote_sent_mails(endpoint: str) -> Callable[[], list[OutboxMail]]:
    """The outbox of moto's SES in the AWS child at ``endpoint``."""
    def mails() -> list[OutboxMail]:
        import urllib.request

        with urllib.request.urlopen(endpoint + SENT_MAILS_PATH, timeout=10) as answer:  # noqa: S310
            return [mail_from_dict(m) for m in json.load(answer)["mails"]]
    return mails


# --------------------------------------------------------------------------
# the embedded AWS: moto in a child process
# --------------------------------------------------------------------------

# DynamoDB's data operations: their results are plain trees of attribute values.
_DYNAMODB_DATA = frozenset({"GetItem", "BatchGetItem", "PutItem", "UpdateItem", "DeleteItem", "Query",
                            "Scan", "TransactGetItems", "TransactWriteItems", "BatchWriteItem"})


class NotPlain(TypeError):
    """A value of a result that only moto's own serializer knows how to write."""


def plain_json(value: Any) -> Any:
    """A result tree as the JSON protocol writes it: ``None`` members left out, bytes
    (``B``, ``BS``) in base64; anything else (a timestamp, an object) is ``NotPlain``."""
    if isinstance(value, dict):
        return {k: plain_json(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [plain_json(v) for v in value]
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise NotPlain(type(value).__name__)


def fast_dynamodb_results() -> None:
    """moto writes each response by walking the operation's output shape member by
    member, trying every spelling of each key: three fifths of its CPU under the
    runner's load went there. A data operation's result is already DynamoDB JSON, so it
    is written as it is; anything else (errors, table descriptions) as moto does."""
    from moto.core.serialize import SERVICE_SPECIFIC_SERIALIZERS, JSONSerializer

    class DataJSONSerializer(JSONSerializer):
        def _serialize_result(self, resp: Any, result: Any) -> Any:
            if self.operation_model.name in _DYNAMODB_DATA and isinstance(result, dict):
                try:
                    body = plain_json(result)
                except NotPlain:
                    pass
                else:
                    return self._serialized_result_to_response(resp, result,
                                                               self.operation_model.output_shape, body)
            return super()._serialize_result(resp, result)

    SERVICE_SPECIFIC_SERIALIZERS.setdefault("dynamodb", {})["json"] = DataJSONSerializer


def fixed_moto_lookups() -> None:
    """Two lookups moto makes on every request, of what cannot change while it runs: its
    service modules (a directory listing and a stat per entry) and a handler class's
    method names (``inspect.getmembers``): a tenth of its CPU under the runner's load."""
    from moto import backends
    from moto.core import responses

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    responses.method_names_from_class = functools.cache(responses.method_names_from_class)


def atomic_moto_app() -> Callable[[dict[str, Any], Any], list[bytes]]:
    """moto's WSGI app, applying one request at a time, each whole: DynamoDB applies
    every request atomically, but moto lets two threads interleave inside one
    UpdateItem, and simultaneous ``ADD``s to one item would be lost. It also answers
    ``SENT_MAILS_PATH`` (the outbox of its SES)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    dispatch, lock = DomainDispatcherApplication(create_backend_app), threading.Lock()

    def atomic(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") == SENT_MAILS_PATH:
            with lock:
                body = json.dumps({"mails": [m.as_dict() for m in sent_mails()]}).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        with lock:
            return list(dispatch(environ, start_response))
    return atomic


class AWSRequestHandler(BaseHTTPRequestHandler):
    """Serves moto's WSGI app over HTTP/1.1 with persistent connections, as AWS does
    (werkzeug's server closes each connection after its answer: every call of the
    app would pay a new TCP connection), without Nagle's delay. The runner's AWS child
    and the benchmark's moto server (``bench.moto_process``) both serve through it, each
    with a subclass naming its ``app``."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    app: Callable[[dict[str, Any], Any], list[bytes]]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command, "SCRIPT_NAME": "", "PATH_INFO": unquote(path),
            "QUERY_STRING": query, "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(length), "SERVER_NAME": HOST,
            "SERVER_PORT": str(self.server.server_address[1]),  # type: ignore[index]
            "SERVER_PROTOCOL": self.request_version, "REMOTE_ADDR": self.client_address[0],
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started[:] = [status, headers]
            return lambda data: None

        result = type(self).app(environ, start_response)
        try:
            data = b"".join(result)
        finally:
            close = getattr(result, "close", None)      # PEP 3333: the server closes it
            if close is not None:
                close()
        status, headers = started
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _serve


class AWSServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = LISTEN_BACKLOG

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


def serve_aws(ready_fd: int) -> int:
    """The AWS child (``devserver.py --serve-aws FD``): moto on 127.0.0.1, a free
    port; writes its endpoint to ``ready_fd``, prints each mail its SES takes (on
    the runner's own stdout, which it shares), and serves until its stdin closes.

    The group's SIGINT / SIGTERM are the runner's to act on: it closes the child's
    stdin once its own clients are done (so no request meets a stopped moto)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    fast_dynamodb_results()
    fixed_moto_lookups()
    AWSRequestHandler.app = atomic_moto_app()
    announce_mails(lambda text: print(text, flush=True))
    server = AWSServer((HOST, 0), AWSRequestHandler)
    threading.Thread(target=server.serve_forever, name="aws", daemon=True).start()
    with os.fdopen(ready_fd, "w") as ready:
        ready.write(f"http://{HOST}:{server.server_address[1]}\n")
    sys.stdin.buffer.read()
    return 0


class AWSProcess:
    """The AWS child of a runner: moto in a process of its own, so that the app's
    threads and moto's do not share one interpreter (one GIL)."""

    def __init__(self) -> None:
        import subprocess

        read_end, write_end = os.pipe()
        try:
            self.proc = subprocess.Popen(  # noqa: S603 (this interpreter, this file)
                [sys.executable, __file__, "--serve-aws", str(write_end)],
                cwd=ROOT, stdin=subprocess.PIPE, pass_fds=(write_end,))
        finally:
            os.close(write_end)
        with os.fdopen(read_end) as ready:
            line = ready.readline().strip()
        if not line.startswith("http://"):
            self.stop()
            raise RuntimeError("the embedded AWS (moto) did not start")
        self.endpoint = line

    def stop(self) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=STOP_SECONDS)
        except Exception:
            self.proc.kill()
            self.proc.wait()


def local_environment(env: MutableMapping[str, str], aws_endpoint: str, issuer: str) -> dict[str, str]:
    """Point this process at moto with dummy credentials; returns what was set."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        env.pop(name, None)
    settings = {
        "AWS_ENDPOINT_URL": aws_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "TESSERA_ISSUER": issuer,
        "TESSERA_STAGE": env.get("TESSERA_STAGE") or "local",
        # A local OIDC issuer (a CI stand-in) serves plain HTTP on a loopback address.
        "TESSERA_FEDERATION_ALLOW_HTTP": env.get("TESSERA_FEDERATION_ALLOW_HTTP") or "true",
        "TESSERA_MAIL_FROM": env.get("TESSERA_MAIL_FROM") or LOCAL_MAIL_FROM,
    }
    env.update(settings)
    return settings


def prepare_storage(seed_file: Path | None) -> list[str]:
    """Create the tables and load the seed file; returns the report lines."""
    from chalicelib.container import container
    from chalicelib.storage.schema import create_tables
    from tessera_admin.seed import load_seed

    c = container()
    create_tables(c.dynamodb(), c.settings.table_prefix)
    if seed_file is None:
        return ["no seed file loaded"]
    data = json.loads(seed_file.read_text(encoding="utf-8"))
    lines = load_seed(c.identities, data, c.roles).lines()
    # Every key family (ES256 and RS256) before the first request, as the rotation
    # job makes sure of on a deployed stage: the JWKS publishes both from the start.
    for alg in c.keyring.algorithms:
        c.keyring.ensure(alg)
    return lines


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def admin_command() -> str:
    """How to run the admin command from here: the console script `make` installs next
    to this interpreter (.venv/bin/tessera-admin), else ``python -m tessera_admin``."""
    here = os.getcwd() + os.sep
    script = Path(sys.executable).with_name("tessera-admin")
    if script.exists():
        return os.path.relpath(script) if str(script).startswith(here) else str(script)
    python = os.path.relpath(sys.executable) if sys.executable.startswith(here) else "python"
    return f"{python} -m tessera_admin"


def banner(base: str, env: Mapping[str, str], seed_file: Path | None, report: list[str],
           scheduler: Scheduler) -> str:
    lines = [f"Tessera listening on {base}", ""]
    lines += [f"  seed: {seed_file or 'none'}"] + [f"    {line}" for line in report]
    jobs = [f"{j.name} every {j.every}s" for j in scheduler.jobs]
    lines.append(f"  schedules: {', '.join(jobs) if jobs else 'none declared'}")
    if scheduler.skipped:
        lines.append(f"  not run locally (cron): {', '.join(scheduler.skipped)}")
    demo = seed_file is not None and seed_file.resolve() == DEMO_SEED
    if demo:
        lines += [
            "",
            "  demo account: user alice, password password4alice",
            f"  CLI client (public): {DEMO_CLIENT_ID}",
            "  introspecting client: resource-server / resource-server-local-secret",
            "",
            "  try:",
            f"    curl {base}/.well-known/openid-configuration",
            f"    curl -X POST -d client_id={DEMO_CLIENT_ID} -d username=alice -d password=password4alice"
            f" -d grant_type=password {base}/oauth/token",
        ]
    lines += [
        "",
        f"  mail: printed here and listed at {base}{OUTBOX_PATH} (sent from {env['TESSERA_MAIL_FROM']})",
        "",
        "  admin command against this server:",
        f"    AWS_ENDPOINT_URL={env['AWS_ENDPOINT_URL']} AWS_ACCESS_KEY_ID=testing "
        f"AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION={LOCAL_REGION} "
        f"TESSERA_STAGE={env['TESSERA_STAGE']} TESSERA_ISSUER={base} "
        f"TESSERA_MAIL_FROM={shlex.quote(env['TESSERA_MAIL_FROM'])} {admin_command()} user show "
        f"{'alice' if demo else 'USERNAME'}",
        "",
        "  Ctrl-C stops it.",
    ]
    return "\n".join(lines)


class StopRequest:
    """The SIGINT / SIGTERM handler: it only records the signal.

    A group signal reaches the runner more than once (make forwards the SIGTERM
    the group already got; Ctrl-C and a SIGTERM can cross), and a handler runs
    on the main thread between any two bytecodes, including inside itself or
    inside a lock the main thread holds. So it takes no lock (``Event.set()``
    does, and deadlocked against itself), prints nothing and raises nothing.
    """

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum

    def wait(self, poll: float = 0.1) -> None:
        # A sleep is resumed after a handler returns (PEP 475): the poll bounds
        # how long a stop takes to be noticed.
        while self.signum is None:
            time.sleep(poll)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run Tessera locally on moto.")
    parser.add_argument("--port", type=int,
                        default=int(os.environ.get("TESSERA_LOCAL_PORT") or DEFAULT_PORT),
                        help="port on 127.0.0.1 (default 8000, env TESSERA_LOCAL_PORT; 0 = any free port)")
    parser.add_argument("--seed", type=Path,
                        default=Path(os.environ.get("TESSERA_LOCAL_SEED") or DEMO_SEED),
                        help="seed file to load (default seeds/demo.json, env TESSERA_LOCAL_SEED)")
    parser.add_argument("--no-seed", action="store_true", help="start with empty tables")
    parser.add_argument("--issuer-host", choices=(HOST, "localhost"),
                        default=os.environ.get("TESSERA_LOCAL_ISSUER_HOST") or HOST,
                        help="the issuer's host name (default 127.0.0.1, env "
                             "TESSERA_LOCAL_ISSUER_HOST); passkeys need localhost, since "
                             "WebAuthn takes no IP address as its relying party id")
    default = Limits()
    parser.add_argument("--request-timeout", type=float,
                        default=float(os.environ.get("TESSERA_LOCAL_REQUEST_TIMEOUT")
                                      or default.request_timeout),
                        help=f"seconds to receive a request and to send its answer (default "
                             f"{default.request_timeout:g}, env TESSERA_LOCAL_REQUEST_TIMEOUT)")
    parser.add_argument("--max-connections", type=int,
                        default=int(os.environ.get("TESSERA_LOCAL_MAX_CONNECTIONS")
                                    or default.max_connections),
                        help=f"connections served at once (default {default.max_connections}, "
                             "env TESSERA_LOCAL_MAX_CONNECTIONS)")
    # The runner's own child (``AWSProcess``): moto, its endpoint written to this file descriptor.
    parser.add_argument("--serve-aws", type=int, metavar="FD", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.request_timeout <= 0 or args.max_connections < 1:
        parser.error("--request-timeout and --max-connections must be positive")
    return args


def stop_within(seconds: float, steps: Mapping[str, Callable[[], object]]) -> list[str]:
    """Run the stop steps side by side, each on a daemon thread; returns the names
    of those not done within ``seconds`` (left behind: the stop does not wait)."""
    threads = {name: threading.Thread(target=step, name=f"stop-{name}", daemon=True)
               for name, step in steps.items()}
    for thread in threads.values():
        thread.start()
    deadline = time.monotonic() + seconds
    for thread in threads.values():
        thread.join(max(0.0, deadline - time.monotonic()))
    return [name for name, thread in threads.items() if thread.is_alive()]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_aws is not None:
        return serve_aws(args.serve_aws)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    # moto's request log would drown the service's own.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    seed_file: Path | None = None if args.no_seed else args.seed
    if seed_file is not None and not seed_file.is_file():
        print(f"error: seed file {seed_file} not found", file=sys.stderr)
        return 2

    stop = StopRequest()
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    limits = Limits(request_timeout=args.request_timeout, max_connections=args.max_connections)
    moto = AWSProcess()
    endpoint = moto.endpoint
    web: LocalDevServer | None = None
    serving: threading.Thread | None = None
    scheduler: Scheduler | None = None
    try:
        from app import app

        try:
            web = make_http_server(app, args.port, limits=limits, outbox=remote_sent_mails(endpoint))
        except OSError as exc:
            print(f"error: cannot listen on {HOST}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        port = web.server.server_address[1]
        base = f"http://{args.issuer_host}:{port}"
        # Settings are read on first use, so the issuer is set before anything reads them.
        env = local_environment(os.environ, endpoint, base)
        try:
            report = prepare_storage(seed_file)
            verify_sender(env["TESSERA_MAIL_FROM"])
        except Exception as exc:
            print(f"error: preparing local storage failed: {exc}", file=sys.stderr)
            return 1
        scheduler = Scheduler(app)
        scheduler.start()
        serving = threading.Thread(target=web.server.serve_forever, name="http", daemon=True)
        serving.start()
        print(banner(base, env, seed_file, report, scheduler), flush=True)
        stop.wait()
        print(f"stopping ({signal.Signals(stop.signum or signal.SIGTERM).name})", flush=True)
        return 0
    finally:
        # Each server's shutdown waits for its poll loop: stop them side by side,
        # and no longer than STOP_SECONDS whatever a client or a job is doing.
        # moto stops once no request is being read any more.
        http: Callable[[], object] = (functools.partial(stop_http, web, serving is not None)
                                      if web is not None else (lambda: None))

        def http_then_moto() -> None:
            http()
            moto.stop()

        steps: dict[str, Callable[[], object]] = {"http, then moto": http_then_moto}
        if scheduler is not None:
            steps["schedules"] = scheduler.stop
        late = stop_within(STOP_SECONDS, steps)
        if late:
            print(f"not stopped within {STOP_SECONDS:g}s, left behind: {', '.join(late)}",
                  file=sys.stderr, flush=True)


def stop_http(web: LocalDevServer, serving: bool) -> None:
    if serving:
        # shutdown() waits for serve_forever() to return; only call it if it ran.
        web.server.shutdown()
    # Closes the listening socket; connections still open end with the process.
    web.server.server_close()


def run() -> None:
    """``main`` and exit without the interpreter's teardown: handler threads may
    still be in a read, and freeing a long session's in-memory tables object by
    object can outlast any stop a terminal or make waits for."""
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    run()
