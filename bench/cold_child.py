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
    if mode.startswith("floor"):
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
        "cpu_s": cpu2 - cpu0, "status": status,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
