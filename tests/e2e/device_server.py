"""A throwaway real server for the device-flow browser tests, run as its own process.

``python -m tests.e2e.device_server PORT`` starts moto in server mode on a free
loopback port, points the AWS SDK at it, creates the tables, seeds alice and the
CLI client, then serves the Chalice app over HTTP on 127.0.0.1:PORT and prints
``READY`` once it accepts connections. A separate process keeps this apart from
the in-process moto mock the other tests use.
"""

from __future__ import annotations

import os
import socket
import sys


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(port: int) -> None:
    from moto.server import ThreadedMotoServer

    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    os.environ.update({
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "TESSERA_ISSUER": f"http://127.0.0.1:{port}",
        "TESSERA_STAGE": "e2e",
    })

    from chalice.config import Config
    from chalice.local import create_local_server

    from app import app
    from chalicelib.container import container
    from chalicelib.storage.schema import create_tables

    c = container()
    create_tables(c.dynamodb(), c.settings.table_prefix)
    ids = c.identities
    ids.create_user("alice", "password4alice", email="alice@example.com", firstname="Alice",
                    lastname="Liddell")
    ids.create_client("cf83e1357eefb8bd", public=True, name="Tessera CLI", grant_types=[
        "password", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
        scopes=["openid", "profile", "email", "tokens:manage"])
    server = create_local_server(app, Config(chalice_stage="e2e"), "127.0.0.1", port)
    print("READY", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]))
