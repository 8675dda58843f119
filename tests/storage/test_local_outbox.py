"""The local runner's outbox (SPEC §11): moto's SES printed and listed at
``/_local/outbox``, by the runner only; the app itself has no such route."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
from collections.abc import Iterator
from http.client import HTTPConnection
from typing import Any

import pytest
from chalice import Chalice

from chalicelib.services.mailer import Mailer, Notice
from chalicelib.storage.dynamo import aws_client
from chalicelib.web.render import render
from devserver import LOCAL_MAIL_FROM, OutboxMail, keep_outbox, make_http_server, sent_mails

LINK = "http://127.0.0.1:8000/invite?token=tsi_0123456789abcdefghijKLMNOP"


@pytest.fixture
def printed(aws: None) -> list[str]:
    lines: list[str] = []
    keep_outbox(LOCAL_MAIL_FROM, lines.append)
    return lines


@pytest.fixture
def mailer(printed: list[str], settings: Any) -> Mailer:
    return Mailer(lambda: aws_client("sesv2"), render,
                  dataclasses.replace(settings, mail_from=LOCAL_MAIL_FROM))


def test_each_mail_is_printed_with_its_recipient_subject_and_links(mailer, printed):
    mailer.send("carol@example.org", Notice(title="You are invited", message="Welcome <in>",
                                            link=LINK, link_label="Accept"), user_id="u-1")
    assert printed == [f"mail to carol@example.org: You are invited\n  link: {LINK}"]


def test_the_outbox_lists_mails_newest_first_with_both_bodies(mailer):
    mailer.send("carol@example.org", Notice(title="First", message="one"), user_id="u-1")
    mailer.send("dave@example.org", Notice(title="Second", message="a & b", link=LINK),
                user_id="u-2")
    mails = sent_mails()
    assert [(m.subject, m.to) for m in mails] == [("Second", ("dave@example.org",)),
                                                   ("First", ("carol@example.org",))]
    assert "a & b" in mails[0].text and "a &amp; b" in mails[0].html
    assert mails[0].links == (LINK,) and mails[1].links == ()


@contextlib.contextmanager
def runner_http(outbox: Any) -> Iterator[tuple[str, int]]:
    app = Chalice(app_name="outbox")

    @app.route("/")
    def index() -> dict[str, bool]:
        return {"ok": True}

    web = make_http_server(app, 0, outbox=outbox)
    thread = threading.Thread(target=web.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield web.server.server_address[:2]
    finally:
        web.server.shutdown()
        web.server.server_close()


def get(address: tuple[str, int], path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    conn = HTTPConnection(*address, timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_the_runner_serves_the_outbox_as_a_page_and_as_json(mailer):
    mailer.send("carol@example.org", Notice(title="Reset <now>", message="m", link=LINK),
                user_id="u-1")
    with runner_http(sent_mails) as address:
        status, headers, raw = get(address, "/_local/outbox.json")
        assert status == 200 and headers["Content-Type"] == "application/json"
        (listed,) = json.loads(raw)["mails"]
        assert listed["to"] == ["carol@example.org"] and listed["links"] == [LINK]
        assert listed["subject"] == "Reset <now>" and listed["from"] == LOCAL_MAIL_FROM
        status, headers, raw = get(address, "/_local/outbox")
        page = raw.decode()
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert f'<a href="{LINK}">{LINK}</a>' in page
        assert "Reset &lt;now&gt;" in page      # escaped, as every page
        assert get(address, "/_local/outbox", "POST")[0] == 405


def test_an_empty_outbox_says_so():
    with runner_http(lambda: []) as address:
        status, _, raw = get(address, "/_local/outbox")
    assert status == 200 and b"No mail sent yet" in raw


def test_without_an_outbox_the_runner_answers_404_there():
    with runner_http(None) as address:
        assert get(address, "/_local/outbox")[0] == 404
        assert get(address, "/_local/outbox.json")[0] == 404


def test_the_deployed_app_has_no_outbox_route(client):
    """The app as packaged (no runner around it) has no route there: it answers as for
    any unknown path (chalice.test, like API Gateway, says 403 "Missing Authentication
    Token", which the deployed gateway answers as a 404: test_deploy_package
    ``test_unknown_routes_get_a_problem_json_404``)."""
    from app import app

    assert not [path for path in app.routes if path.startswith("/_local")]
    unknown = client.http.get("/no-such-path")
    for path in ("/_local/outbox", "/_local/outbox.json"):
        answer = client.http.get(path)
        assert (answer.status_code, answer.body) == (unknown.status_code, unknown.body)
        assert answer.status_code in (403, 404)


def test_a_simple_message_reads_as_well():
    from types import SimpleNamespace

    from devserver import outbox_mail

    simple = SimpleNamespace(id="m-1", source="a@b.test", subject="Hi", body=f"see {LINK}",
                             destinations={"ToAddresses": ["c@d.test"]})
    assert outbox_mail(simple) == OutboxMail("m-1", "a@b.test", ("c@d.test",), "Hi",
                                               f"see {LINK}", "", (LINK,))
