"""One cold start in a fresh interpreter (run by ``bench.coldstart``, not by hand).

    python bench/cold_child.py TASK_DIR MODE   < {"event": {...}}

``TASK_DIR`` is laid out like ``/var/task`` of the deployed function and comes
first on ``sys.path``. ``floor`` times ``import boto3`` and creating one
DynamoDB client; ``floor+jwt`` and ``floor+secretsmanager`` add what the first
token request needs besides (PyJWT with cryptography, a Secrets Manager client);
``app`` times ``import app`` and then the first request through the handler,
``app.app(event, context)``. Prints one JSON line. Only the
standard library is imported before the clock starts, and the same modules in
both modes.

``snapstart`` models a function restored from a Lambda SnapStart snapshot. Before
the clock starts it does what Lambda does once per published version, before the
snapshot: ``import app`` (the init phase) and ``chalicelib.snapstart.before_snapshot()``
(timed on its own, as ``init_s``); then the clock starts, and it runs
``chalicelib.snapstart.after_restore()`` (``restore_s``) and the first request
(``request_s``), as a restored instance does. ``total_s`` is what is left after
restore. What it does not model:

* the restore itself: Lambda resumes the snapshot's memory, lazily, page by page
  (page faults on first touch, a cache of snapshot chunks); here the interpreter's
  memory is simply still there, warm in this process;
* the network to AWS: the first calls after restore open new connections (the
  clients were dropped) to moto on 127.0.0.1 over plain HTTP, with no TLS handshake;
* the credentials provider: Lambda hands a restored function its credentials
  through the container credentials endpoint (an HTTP call on the first client
  after restore); here they are environment variables, read at no cost.
"""

import json
import resource
import sys
import time


class Context:
    function_name = "tessera-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:tessera-bench"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 25_000


def main() -> int:
    task, mode = sys.argv[1], sys.argv[2]
    sys.path[0] = task
    payload = json.loads(sys.stdin.read() or "{}")
    wall0, cpu0 = time.perf_counter(), time.process_time()
    status = 0
    init_s = restore_s = 0.0
    if mode == "snapstart":
        import app as function
        from chalicelib import snapstart

        snapstart.before_snapshot()
        init_s = time.perf_counter() - wall0
        wall0, cpu0 = time.perf_counter(), time.process_time()     # the snapshot is restored
        snapstart.after_restore()
        wall1 = time.perf_counter()
        restore_s = wall1 - wall0
        out = function.app(payload["event"], Context())
        status = int(out["statusCode"])
    elif mode.startswith("floor"):
        import boto3

        boto3.client("dynamodb")
        if mode == "floor+jwt":
            import jwt  # noqa: F401 - what verifying or signing the first token imports
        elif mode == "floor+secretsmanager":
            boto3.client("secretsmanager")
        wall1 = time.perf_counter()
    else:
        import app as function

        wall1 = time.perf_counter()
        out = function.app(payload["event"], Context())
        status = int(out["statusCode"])
    wall2, cpu2 = time.perf_counter(), time.process_time()
    print(json.dumps({
        "import_s": wall1 - wall0, "request_s": wall2 - wall1, "total_s": wall2 - wall0,
        "cpu_s": cpu2 - cpu0, "status": status, "init_s": init_s, "restore_s": restore_s,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
