"""A throwaway local server for the PAT browser test: moto in server mode plus
the app under Chalice's local dev server, both on 127.0.0.1.

Usage: python -m tests.e2e.pats_server APP_PORT   (prints READY when serving)
"""

from __future__ import annotations

import os
import socket
import sys


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(app_port: int) -> None:
    from moto.server import ThreadedMotoServer

    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{moto_port}", AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
        TESSERA_ISSUER=f"http://127.0.0.1:{app_port}", TESSERA_TABLE_PREFIX="e2e-pats-",
        TESSERA_KEYS_SECRET="e2e-pats/signing-keys")

    from chalice.config import Config
    from chalice.local import LocalDevServer

    from app import app
    from chalicelib.container import Container
    from chalicelib.storage.schema import create_tables

    c = Container()
    create_tables(c.dynamodb(), c.settings.table_prefix)
    c.identities.create_user("alice", "password4alice", email="alice@example.com",
                             firstname="Alice", lastname="Liddell")
    server = LocalDevServer(app, Config.create(chalice_stage="dev", app_name="tessera"),
                            "127.0.0.1", app_port)
    print("READY", flush=True)
    server.server.serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]))
