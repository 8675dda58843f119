"""The real runner keeps the mail (SPEC §11): a mail sent to its SES (moto, in the
runner's process) is printed on its console and listed at /_local/outbox.

No route sends mail yet, so the test sends one through the mailer service from
here, to the runner's own moto endpoint: what the app's mail will do."""

from __future__ import annotations

import dataclasses
import json
import time

from chalicelib.config import Settings
from chalicelib.services.mailer import Mailer, Notice
from chalicelib.web.render import render
from devserver import LOCAL_MAIL_FROM
from tests.e2e.support import LiveServer, http


def runner_ses(server: LiveServer) -> object:
    import botocore.session

    env = server.admin_env
    return botocore.session.get_session().create_client(
        "sesv2", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_a_mail_is_printed_by_the_runner_and_listed_in_its_outbox(live_server):
    assert f"listed at {live_server.base_url}/_local/outbox" in live_server.log()
    client = runner_ses(live_server)
    link = f"{live_server.base_url}/signin?from=outbox-test"
    mailer = Mailer(lambda: client, render,
                    dataclasses.replace(Settings(), mail_from=LOCAL_MAIL_FROM))
    message_id = mailer.send("outbox-test@example.org",
                             Notice(title="Outbox test", message="Hello", link=link),
                             user_id="u-e2e")

    printed = f"mail to outbox-test@example.org: Outbox test\n  link: {link}"
    deadline = time.monotonic() + 5
    while printed not in live_server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert printed in live_server.log()

    listed = json.loads(http("GET", f"{live_server.base_url}/_local/outbox.json").body)["mails"]
    mail = next(m for m in listed if m["id"] == message_id)
    assert mail["links"] == [link] and "Hello" in mail["text"] and "Hello" in mail["html"]
    page = http("GET", f"{live_server.base_url}/_local/outbox")
    assert page.status == 200 and f'<a href="{link}">' in page.body.decode()
