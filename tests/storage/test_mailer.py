"""The mailer (SPEC §11) against moto's SES, and its retries against a fake SES."""

from __future__ import annotations

import dataclasses
import email
import email.policy
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from chalicelib import deadline
from chalicelib.config import Settings
from chalicelib.services.mailer import SEND_ATTEMPTS, Mail, Mailer, MailNotSent, Notice
from chalicelib.storage.dynamo import aws_client
from chalicelib.web.render import TEMPLATES, render

SENDER = "Tessera <no-reply@tessera.test>"
LINK = "https://tessera.test/invite?token=tsi_0123456789abcdefghijKLMNOP"


def mail_settings(settings: Settings, sender: str = SENDER) -> Settings:
    return dataclasses.replace(settings, mail_from=sender)


@pytest.fixture
def ses(aws: None) -> Iterator[Any]:
    client = aws_client("sesv2")
    client.create_email_identity(EmailIdentity="no-reply@tessera.test")
    yield client


def sent_messages() -> list[Any]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return list(ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages)


def bodies(raw: str) -> dict[str, str]:
    message = email.message_from_string(raw, policy=email.policy.default)
    return {part.get_content_type(): part.get_content() for part in message.walk()
            if not part.is_multipart()}


NOTICE = Notice(title="Hello <you>", message="Tom & Jerry's <b>bold</b> plan", link=LINK,
                link_label="Accept the invitation")


def test_a_mail_reaches_ses_with_a_text_and_an_html_body(ses, settings):
    mailer = Mailer(lambda: aws_client("sesv2"), render, mail_settings(settings))
    message_id = mailer.send("carol@example.org", NOTICE, user_id="u-1")

    (sent,) = sent_messages()
    assert sent.id == message_id
    parsed = email.message_from_string(sent.raw_data, policy=email.policy.default)
    assert parsed["Subject"] == "Hello <you>"
    assert parsed["To"] == "carol@example.org"
    assert parsed["From"] == SENDER
    parts = bodies(sent.raw_data)
    # The text body is not escaped; the HTML body is.
    assert "Tom & Jerry's <b>bold</b> plan" in parts["text/plain"]
    assert LINK in parts["text/plain"]
    assert "Tom &amp; Jerry&#39;s &lt;b&gt;bold&lt;/b&gt; plan" in parts["text/html"]
    assert f'<a href="{LINK}">Accept the invitation</a>' in parts["text/html"]


def test_each_mail_is_one_audit_event_without_the_address_or_the_link(ses, settings,
                                                                        audit_events):
    mailer = Mailer(lambda: aws_client("sesv2"), render, mail_settings(settings))
    audit_events()
    message_id = mailer.send("carol@example.org", NOTICE, user_id="u-1")

    (event,) = [e for e in audit_events() if e["event"] == "mail_sent"]
    assert {k: event[k] for k in ("kind", "user_id", "to_domain", "message_id")} == {
        "kind": "notice", "user_id": "u-1", "to_domain": "example.org", "message_id": message_id}
    line = str(event)
    assert "carol" not in line and "tsi_" not in line


def test_an_unverified_sender_is_refused_with_a_clear_error(ses, settings):
    mailer = Mailer(lambda: aws_client("sesv2"), render,
                    mail_settings(settings, "someone@unverified.test"))
    with pytest.raises(MailNotSent) as caught:
        mailer.send("carol@example.org", NOTICE, user_id="u-1")
    assert "MessageRejected" in caught.value.detail
    assert sent_messages() == []


def test_without_a_sender_no_mail_is_sent(ses, settings):
    mailer = Mailer(lambda: aws_client("sesv2"), render, mail_settings(settings, ""))
    with pytest.raises(MailNotSent, match="not configured"):
        mailer.send("carol@example.org", NOTICE, user_id="u-1")


@pytest.mark.parametrize("to", ["carol@example.org\nBcc: eve@evil.test", "Carol <carol@example.org>",
                                "not-an-address"])
def test_a_recipient_that_is_not_one_bare_address_is_refused(ses, settings, to):
    mailer = Mailer(lambda: aws_client("sesv2"), render, mail_settings(settings))
    with pytest.raises(MailNotSent):
        mailer.send(to, NOTICE, user_id="u-1")
    assert sent_messages() == []


def test_a_subject_with_a_line_break_is_refused(ses, settings):
    mailer = Mailer(lambda: aws_client("sesv2"), render, mail_settings(settings))
    with pytest.raises(MailNotSent):
        mailer.send("carol@example.org", Notice(title="Hi\nBcc: eve@evil.test", message="x"),
                    user_id="u-1")
    assert sent_messages() == []


# -- retries, against a fake SES ---------------------------------------------------

def throttled() -> ClientError:
    return ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "slow down"},
                        "ResponseMetadata": {"HTTPStatusCode": 429}}, "SendEmail")


class FakeSes:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls: list[dict[str, Any]] = []

    def send_email(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        if self.failures:
            raise self.failures.pop(0)
        return {"MessageId": f"m-{len(self.calls)}"}


def fake_mailer(settings: Settings, ses: FakeSes, pauses: list[float]) -> Mailer:
    return Mailer(lambda: ses, render, mail_settings(settings), sleep=pauses.append,
                  rand=lambda: 1.0)


def test_a_throttled_or_failing_send_is_retried_with_backoff(settings):
    ses, pauses = FakeSes([throttled(), EndpointConnectionError(endpoint_url="https://ses")]), []
    assert fake_mailer(settings, ses, pauses).send("c@example.org", NOTICE, user_id="u") == "m-3"
    assert len(ses.calls) == 3
    assert pauses == [0.1, 0.2]      # full jitter at its top: 100 ms, doubling


def test_a_send_that_keeps_failing_raises_after_its_attempts(settings):
    ses, pauses = FakeSes([throttled() for _ in range(SEND_ATTEMPTS)]), []
    with pytest.raises(MailNotSent) as caught:
        fake_mailer(settings, ses, pauses).send("c@example.org", NOTICE, user_id="u")
    assert len(ses.calls) == SEND_ATTEMPTS
    assert "TooManyRequestsException" in caught.value.detail


def test_no_retry_starts_that_would_outlast_the_request(settings):
    ses, pauses = FakeSes([throttled(), throttled()]), []
    mailer = fake_mailer(settings, ses, pauses)
    # Enough time for one attempt, not for a pause and another attempt and the answer.
    with deadline.bound(lambda: mailer.needed_ms + 50), pytest.raises(MailNotSent, match="in time"):
        mailer.send("c@example.org", NOTICE, user_id="u")
    assert len(ses.calls) == 1 and pauses == []


@pytest.mark.parametrize("refusal", [
    ClientError({"Error": {"Code": "MessageRejected", "Message": "no"},
                 "ResponseMetadata": {"HTTPStatusCode": 400}}, "SendEmail"),
    NoCredentialsError()])
def test_a_refused_mail_is_not_retried(settings, refusal):
    ses, pauses = FakeSes([refusal]), []
    with pytest.raises(MailNotSent, match="refused"):
        fake_mailer(settings, ses, pauses).send("c@example.org", NOTICE, user_id="u")
    assert len(ses.calls) == 1


# -- kinds ------------------------------------------------------------------------

def test_every_kind_of_mail_has_a_text_and_an_html_template():
    kinds = {cls.kind for cls in Mail.__subclasses__() if cls.__module__.startswith("chalicelib.")}
    assert "notice" in kinds
    missing = sorted(f"mail/{kind}.{ext}" for kind in kinds for ext in ("txt", "html")
                     if not (TEMPLATES / "mail" / f"{kind}.{ext}").is_file())
    assert missing == []


def test_a_kind_is_a_dataclass_and_two_templates(settings, tmp_path):
    """Adding a kind needs nothing else: its fields reach both templates."""

    @dataclasses.dataclass(frozen=True)
    class Greeting(Mail):
        kind: ClassVar[str] = "greeting"
        name: str

        def subject(self) -> str:
            return f"Hi {self.name}"

    seen: list[tuple[str, dict[str, Any]]] = []

    def fake_render(template: str, /, **values: Any) -> str:
        seen.append((template, values))
        return template

    mailer = Mailer(lambda: FakeSes([]), fake_render, mail_settings(settings))
    rendered = mailer.render(Greeting(name="Ann"))
    assert rendered.subject == "Hi Ann"
    assert seen == [("mail/greeting.txt", {"name": "Ann"}), ("mail/greeting.html", {"name": "Ann"})]


def test_the_container_makes_the_ses_client_on_the_first_send_only(settings):
    from chalicelib.clock import FakeClock
    from chalicelib.container import Container

    asked: list[str] = []
    ses = FakeSes([])

    def factory(service: str) -> Any:
        asked.append(service)
        return ses

    c = Container(mail_settings(settings), FakeClock(), client_factory=factory)
    mailer = c.mailer
    assert asked == []
    mailer.send("c@example.org", NOTICE, user_id="u")
    assert asked == ["sesv2"] and len(ses.calls) == 1
