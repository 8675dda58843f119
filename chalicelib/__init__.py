"""Tessera's library: see docs/development.md, "Layout".

Cold start (SPEC §9): PyJWT's ``jwt.algorithms`` runs ``from cryptography import
x509`` for the one case of a PEM certificate given as a key, which Tessera never
does (keys are built from JWKs). Loading ``cryptography.x509`` costs about a
third of PyJWT's import, on every first request. It is therefore registered as a
lazily loaded module (``importlib.util.LazyLoader``, the standard library's way):
it loads in full the first time anything uses it, and not before.

``webauthn`` (passkeys, SPEC §11) needs pyOpenSSL, and with pyOpenSSL installed
botocore's ``httpsession`` takes its ``SSLContext`` from
``urllib3.contrib.pyopenssl``, which imports OpenSSL and with it all of
``cryptography.x509``: a cost on every cold start for a class botocore uses
only as the standard library's. That module is marked absent (``None`` in
``sys.modules``, the documented way to make an import fail), so botocore takes
the standard library's ``ssl`` as it does without pyOpenSSL; webauthn imports
OpenSSL itself, on first use.
"""

import sys

from chalicelib._lazy import defer_module

defer_module("cryptography.x509")
sys.modules.setdefault("urllib3.contrib.pyopenssl", None)  # type: ignore[arg-type]
