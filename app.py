"""Tessera: wires blueprints, middleware and schedules together; nothing else."""

from chalicelib import startup

startup.pause()   # on Lambda, until the first invocation ends (chalicelib/startup.py)

import os  # noqa: E402
from typing import Any  # noqa: E402

from chalice import Chalice, Rate  # noqa: E402

from chalicelib import snapstart  # noqa: E402
from chalicelib.http import error_middleware, token_expiration_middleware  # noqa: E402
from chalicelib.routes import (  # noqa: E402
    account,
    account_security,
    authorize,
    device,
    docs,
    invitations,
    mfa,
    mfa_passkeys,
    oauth,
    pages_account,
    pages_mail,
    pages_tokens,
    passkey_pages,
    roles,
    signin,
    tokens,
    wellknown,
)
from chalicelib.routes.host import host_middleware  # noqa: E402
from chalicelib.web.errors import page_error_middleware  # noqa: E402

app = Chalice(app_name="tessera")
snapstart.register()   # Lambda SnapStart hooks, when the runtime provides them
app.api.binary_types.append("application/x-www-form-urlencoded")
app.register_middleware(startup.middleware, "all")      # ends the cold start's GC pause
app.register_middleware(host_middleware, "http")       # outermost: one issuer per stage
app.register_middleware(error_middleware, "http")
app.register_middleware(page_error_middleware, "http")   # inner: pages answer HTML
app.register_middleware(token_expiration_middleware, "http")   # a PAT's expiry on its answers
app.register_blueprint(wellknown.bp)
app.register_blueprint(oauth.bp)
app.register_blueprint(account.bp)
app.register_blueprint(device.bp)
app.register_blueprint(tokens.bp)
app.register_blueprint(roles.bp)
app.register_blueprint(pages_tokens.bp)
app.register_blueprint(pages_account.bp)
app.register_blueprint(authorize.bp)
app.register_blueprint(docs.bp)
app.register_blueprint(signin.bp)
app.register_blueprint(mfa.bp)
app.register_blueprint(account_security.bp)
app.register_blueprint(invitations.bp)
app.register_blueprint(pages_mail.bp)
app.register_blueprint(mfa_passkeys.bp)
app.register_blueprint(passkey_pages.bp)


@app.schedule(Rate(int(os.environ.get("TESSERA_PURGE_RATE_MINUTES", "15")), unit=Rate.MINUTES))
def purge_idle_sessions(event: Any) -> dict[str, object]:
    from chalicelib.container import container
    from chalicelib.jobs.purge import purge_idle_sessions as purge

    c = container()
    # The invocation's context rides on the event: Chalice sets app.lambda_context
    # only for API requests, so on a scheduled run that attribute does not exist.
    context = getattr(event, "context", None)
    remaining = context.get_remaining_time_in_millis if context else (lambda: 10**9)
    return purge(c.sessions_repo, c.clock, remaining).as_dict()


@app.schedule(Rate(1, unit=Rate.DAYS))
def rotate_signing_keys(event: Any) -> dict[str, object]:
    from chalicelib.container import container
    from chalicelib.jobs.rotate import rotate_if_due

    c = container()
    return rotate_if_due(c.keyring, c.settings)


@app.schedule(Rate(1, unit=Rate.DAYS))
def send_expiry_notices(event: Any) -> dict[str, object]:
    from chalicelib.container import container
    from chalicelib.jobs.expiry_notices import MailNotifier
    from chalicelib.jobs.expiry_notices import send_expiry_notices as send

    c = container()
    context = getattr(event, "context", None)   # as for the purge above
    remaining = context.get_remaining_time_in_millis if context else (lambda: 10**9)
    notifier = MailNotifier(c.letters, c.settings.issuer)
    return send(c.pats_repo, c.users, notifier, c.clock, remaining).as_dict()
