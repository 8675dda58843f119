"""Mail on, for API-level tests: a sender verified in moto's SES, and the mails SES took."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import re
from typing import Any

SENDER = "Tessera <no-reply@tessera.test>"


def mail_on(ctr: Any, settings: Any) -> None:
    from chalicelib.storage.dynamo import aws_client

    ctr.settings = dataclasses.replace(settings, mail_from=SENDER)
    aws_client("sesv2").create_email_identity(EmailIdentity="no-reply@tessera.test")


def sent() -> list[dict[str, str]]:
    """Every mail moto's SES took, oldest first: to, subject and the plain-text body."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    out = []
    for message in ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages:
        parsed = email.message_from_string(message.raw_data, policy=email.policy.default)
        plain = next(p.get_content() for p in parsed.walk() if p.get_content_type() == "text/plain")
        out.append({"to": str(parsed["To"]), "subject": str(parsed["Subject"]), "text": plain})
    return out


def link(mail_text: str, prefix: str) -> str:
    """The path and query of the link carrying a ``prefix`` token in a mail."""
    found = re.search(r"https?://[^/\s]+(/\S*token=" + prefix + r"[0-9A-Za-z]+)", mail_text)
    assert found, mail_text
    return found.group(1)
