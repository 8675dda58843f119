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
