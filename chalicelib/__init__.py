"""Tessera's library: see docs/development.md, "Layout".

Cold start (SPEC §9): PyJWT's ``jwt.algorithms`` runs ``from cryptography import
x509`` for the one case of a PEM certificate given as a key, which Tessera never
does (keys are built from JWKs). Loading ``cryptography.x509`` costs about a
third of PyJWT's import, on every first request. It is therefore registered as a
lazily loaded module (``importlib.util.LazyLoader``, the standard library's way):
it loads in full the first time anything uses it, and not before.
"""

from chalicelib._lazy import defer_module

defer_module("cryptography.x509")
