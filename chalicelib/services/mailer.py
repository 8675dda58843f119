"""Mail through Amazon SES (SPEC §11): one ``Mailer``, one ``send``.

The contract of a caller: **send after the state change has committed.** A mail
announces what happened (an invitation stored, a password changed, a token about
to expire); sending first and then losing the write would announce what did not
happen. So a service makes its conditional write (or transaction), and only once
it returned calls ``send``. A mail that then cannot be sent raises ``MailNotSent``
after the write: the caller decides whether that fails its answer or is logged
and the answer stands (a notice usually is; an invitation is answered with an
error so the inviter tries again).

* **Kinds.** A kind of mail is a small frozen dataclass of its fields, subclassing
  ``Mail`` with its ``kind`` (the template name) and its ``subject``, and two
  templates in the web layer's ``templates/mail/``: ``<kind>.txt`` (plain text, not
  escaped) and ``<kind>.html`` (autoescaped). Both are rendered with the
  dataclass's fields and sent as one ``multipart/alternative`` message.
* **SES.** SESv2 ``SendEmail`` with raw content (the MIME message), from the
  stage's sender (``TESSERA_MAIL_FROM``). The client comes from the container's
  client factory on the first ``send``: nothing here is built at import, and the
  token endpoint and JWT checks never load this module.
* **Time.** botocore retries inside each call (standard mode); a call that still
  fails for a passing reason (throttling, an SES outage, a network fault) is tried
  again with jittered exponential backoff while the request's time budget
  (``chalicelib.deadline``) leaves room for another attempt and the answer. Then
  ``MailNotSent``: a clear error, never a hang past the function's timeout.
* **Audit.** One ``mail_sent`` event per mail: its kind, the user it concerns, the
  recipient's domain (the address is personal data) and SES's message id. The
  links of a mail carry single-use tokens: no body, link or address is logged.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import parseaddr
from typing import Any, ClassVar

from chalicelib import audit, deadline
from chalicelib.config import Settings
from chalicelib.errors import StorageUnavailable, TesseraError

# An AWS service name -> its client (the container's factory).
ClientFactory = Callable[[str], Any]
# A template's name and its values -> the rendered text (the web layer's ``render``).
Render = Callable[..., str]

TEMPLATE_DIR = "mail"
# SES answers these when a call may succeed later (SESv2 API reference, "Common Errors").
_PASSING = frozenset({"TooManyRequestsException", "ThrottlingException", "Throttling",
                      "LimitExceededException", "InternalFailure", "InternalServerError",
                      "ServiceUnavailable", "ServiceUnavailableException", "RequestTimeout"})
# Our tries of one mail (each is one SendEmail call, which botocore may retry itself).
SEND_ATTEMPTS = 4


class MailNotSent(TesseraError):
    """SES did not take the mail: the sender is not set or not verified, the message
    was rejected, or SES kept failing until the request's time ran out. The state
    change the mail announces has committed; the caller logs this or answers it."""

    status = 503
    title = "Service Unavailable"


@dataclass(frozen=True)
class Mail:
    """A kind of mail: subclass it with the fields its two templates print."""

    kind: ClassVar[str]
    # The templates' name, when a kind uses another kind's (``kind`` otherwise).
    template: ClassVar[str] = ""

    def subject(self) -> str:
        raise NotImplementedError

    def fields(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Notice(Mail):
    """A short message with an optional link: the generic kind."""

    kind: ClassVar[str] = "notice"
    title: str
    message: str
    link: str = ""
    link_label: str = ""

    def subject(self) -> str:
        return self.title


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def recipient_domain(address: str) -> str:
    """What the audit log says of a recipient: the domain of the address only."""
    return parseaddr(address)[1].rpartition("@")[2].lower()


def _error_code(exc: Exception) -> str | None:
    """An SES error's code (botocore's ``ClientError``), None for other failures."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def _passing(exc: Exception) -> bool:
    """A failure another attempt may not meet: throttling, an SES 5xx, or botocore's
    connection and timeout errors (``botocore.exceptions``, not imported here: only
    storage imports the AWS SDK). Missing credentials or a bad request are not."""
    code = _error_code(exc)
    if code is not None:
        status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in _PASSING or int(status or 0) >= 500
    name = type(exc).__name__
    return (type(exc).__module__.startswith(("botocore.", "urllib3."))
            and ("Connection" in name or "Timeout" in name))


class Mailer:
    """Renders a ``Mail`` and sends it through SESv2; no storage of its own."""

    def __init__(self, client: Callable[[], Any], render: Render, settings: Settings, *,
                 sleep: Callable[[float], None] = time.sleep,
                 rand: Callable[[], float] = random.random,
                 base_ms: float = 100, cap_ms: float = 2000) -> None:
        self._client = client
        self._render = render
        self.settings = settings
        self.sleep, self.rand = sleep, rand
        self.base_ms, self.cap_ms = base_ms, cap_ms

    @property
    def needed_ms(self) -> int:
        """Time left below which no attempt starts: one whole SES call (the client's
        connect and read timeouts) and the reserve kept for answering."""
        s = self.settings
        return s.dynamodb_connect_timeout_ms + s.dynamodb_read_timeout_ms + s.deadline_reserve_ms

    def render(self, mail: Mail) -> Rendered:
        values = mail.fields()
        name = mail.template or mail.kind
        return Rendered(subject=mail.subject(),
                        text=self._render(f"{TEMPLATE_DIR}/{name}.txt", **values),
                        html=self._render(f"{TEMPLATE_DIR}/{name}.html", **values))

    def message(self, to: str, mail: Mail) -> EmailMessage:
        """The MIME message: both bodies as ``multipart/alternative`` (RFC 2046 §5.1.4)."""
        sender = self.settings.mail_from
        if not sender or "@" not in parseaddr(sender)[1]:
            raise MailNotSent("Mail is not configured", detail="TESSERA_MAIL_FROM is not set "
                              "to an address")
        name, address = parseaddr(to)
        if "@" not in address or address != to.strip() or name:
            raise MailNotSent("Mail has no valid recipient", detail="recipient is not a bare "
                              "address")
        rendered = self.render(mail)
        msg = EmailMessage()
        try:
            msg["From"] = sender
            msg["To"] = Address(addr_spec=address)
            # A header value with a line break raises here: nothing is injected.
            msg["Subject"] = rendered.subject
        except (ValueError, IndexError) as exc:
            raise MailNotSent("Mail could not be composed", detail=str(exc)) from exc
        msg.set_content(rendered.text)
        msg.add_alternative(rendered.html, subtype="html")
        return msg

    def send(self, to: str, mail: Mail, *, user_id: str) -> str:
        """Send ``mail`` to ``to``; SES's message id. Call it after the change it
        announces has committed. ``MailNotSent`` when SES did not take it in time."""
        msg = self.message(to, mail)
        request = {"FromEmailAddress": self.settings.mail_from,
                   "Destination": {"ToAddresses": [parseaddr(to)[1]]},
                   "Content": {"Raw": {"Data": msg.as_bytes(policy=SMTP)}}}
        message_id = self._send(request, mail.kind)
        audit.event("mail_sent", kind=mail.kind, user_id=user_id,
                    to_domain=recipient_domain(to), message_id=message_id)
        return message_id

    def _send(self, request: dict[str, Any], kind: str) -> str:
        last = ""
        for attempt in range(SEND_ATTEMPTS):
            if attempt:
                self._pause(attempt - 1, kind, last)
            try:
                answer = self._client().send_email(**request)
            except StorageUnavailable as exc:
                # The client's deadline gate refused an attempt: no time is left.
                raise MailNotSent("Mail could not be sent in time",
                                  detail=f"{kind}: {exc.detail or exc.description}") from exc
            except Exception as exc:
                code = _error_code(exc) or type(exc).__name__
                if not _passing(exc):
                    raise MailNotSent("Mail was refused",
                                      detail=f"{kind}: SES answered {code}") from exc
                last = code
                continue
            return str(answer["MessageId"])
        raise MailNotSent("Mail could not be sent",
                          detail=f"{kind}: SES failed {SEND_ATTEMPTS} times, last {last}")

    def _pause(self, attempt: int, kind: str, last: str) -> None:
        """Full-jitter backoff before another attempt, only if that attempt fits."""
        delay = self.rand() * min(self.cap_ms, self.base_ms * 2 ** attempt)
        left = deadline.remaining_ms()
        if left is not None and left - delay < self.needed_ms:
            raise MailNotSent("Mail could not be sent in time",
                              detail=f"{kind}: SES answered {last}; {left:.0f} ms left")
        self.sleep(delay / 1000)
