"""``chalicelib._lazy.defer_module``: a deferred module loads on first use, and not before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, sys
from chalicelib._lazy import defer_module
first = defer_module("email.mime.text")
again = defer_module("email.mime.text")
from email.mime import text                      # the form PyJWT uses for x509
before = "email.mime.base" in sys.modules         # imported by email.mime.text's body
message = text.MIMEText("hello")                  # first use: the module loads in full
after = "email.mime.base" in sys.modules
same = sys.modules["email.mime.text"]
print(json.dumps({"first": first, "again": again, "same": text is same, "before": before,
                  "after": after, "body": message.get_payload()}))
"""


def run(code: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_deferred_module_loads_on_first_use_and_not_before():
    assert run(PROBE) == {"first": True, "again": False, "same": True, "before": False,
                          "after": True, "body": "hello"}


def test_importing_chalicelib_and_pyjwt_leaves_x509_unloaded_until_used():
    out = run("import json, sys, chalicelib, jwt\n"
              "before = 'cryptography.x509.base' in sys.modules\n"
              "from cryptography import x509\n"
              "name = x509.NameOID.COMMON_NAME.dotted_string\n"
              "print(json.dumps({'before': before, 'name': name}))")
    assert out == {"before": False, "name": "2.5.4.3"}


JINJA_PROBE = r"""
import json, sys
import chalicelib   # first, as app.py imports it
from moto import mock_aws
from chalice.test import Client
from chalicelib import container
from chalicelib.clock import FakeClock
from chalicelib.config import Settings
from chalicelib.storage.schema import create_tables
from tests.api.helpers import bearer, seed, tokens

def loaded():
    # (moto itself imports markupsafe, so only Jinja2, our renderer and the mailer are
    # looked for here)
    return sorted(m for m in sys.modules if m.split(".")[0] == "jinja2"
                  or m in ("chalicelib.web.render", "chalicelib.services.mailer"))

def second_factor_libraries():
    # TOTP, QR codes, WebAuthn and the pyOpenSSL it needs (SPEC §11): first use only.
    return sorted({m.split(".")[0] for m in sys.modules
                   if m.split(".")[0] in ("pyotp", "segno", "webauthn", "OpenSSL", "cbor2")})

with mock_aws():
    settings = Settings(issuer="https://tessera.test", table_prefix="test-",
                        keys_secret_name="test/signing-keys")
    c = container.Container(settings, FakeClock())
    create_tables(c.dynamodb(), settings.table_prefix)
    seed(c)
    container.use(c)
    import app
    after_import = loaded()
    with Client(app.app) as client:
        grant = tokens(client)
        me = client.http.get("/v1/me", headers=bearer(grant["access_token"])).status_code
        after_tokens = loaded()
        page = client.http.get("/device").status_code
        after_page = loaded()
        factors = second_factor_libraries()
print(json.dumps({"import": after_import, "tokens": after_tokens, "me": me, "page": page,
                  "after_page": "jinja2" in after_page, "second_factors": factors}))
"""


def test_jinja2_loads_on_the_first_page_request_and_never_for_tokens_or_jwt_checks():
    """SPEC §9: importing the app, the token endpoint and a JWT check (/v1/me) leave
    Jinja2 (and the mailer) unloaded; the first page request loads Jinja2. None of them, nor a page
    without a second factor, loads the TOTP, QR code or WebAuthn libraries."""
    import os

    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing"}
    env.pop("AWS_ENDPOINT_URL", None)
    done = subprocess.run([sys.executable, "-c", JINJA_PROBE], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {"import": [], "tokens": [], "me": 200, "page": 200, "after_page": True,
                   "second_factors": []}


def test_importing_the_app_loads_neither_jinja2_nor_markupsafe():
    out = run("import json, sys, app\n"
              "print(json.dumps({'loaded': sorted(m for m in sys.modules if m.split('.')[0] in "
              "('jinja2', 'markupsafe') or m == 'chalicelib.web.render')}))")
    assert out == {"loaded": []}


def test_importing_the_app_does_not_load_webauthn():
    """The passkey routes import the ``webauthn`` package on their first call (SPEC §9)."""
    out = run("import json, sys, app\n"
              "print(json.dumps({'loaded': sorted(m for m in sys.modules if m.split('.')[0] in "
              "('webauthn', 'cbor2') or m == 'chalicelib.services.passkeys')}))")
    assert out == {"loaded": []}
