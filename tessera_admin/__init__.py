"""The operator's tools: the admin command (``tessera-admin``, ``cli.py``) and the seed
loader (``seed.py``).

They run on an operator's machine or in the local runner, never in a function, so
they live outside ``chalicelib`` and out of the Lambda package (issue 23). They use
chalicelib's container, services and storage as any other caller does;
chalicelib never imports them (tests/unit/test_architecture.py).
"""
