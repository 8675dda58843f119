"""The real runner under concurrent clients (issue 27): 32 keep-alive clients at once,
each round the benchmark's mix, all answered as expected; and a short run of the
benchmark's load (``bench.runner_load.measure``) gives figures that hang together.
How fast is the benchmark's business (its runner phase), not a test's: nothing here
asserts a time."""

from __future__ import annotations

import threading
from collections import Counter
from urllib.parse import urlsplit

from bench import runner_load
from tests.e2e.support import LiveServer


def test_32_concurrent_keep_alive_clients_are_all_answered_as_expected(live_server: LiveServer):
    base = urlsplit(live_server.base_url)
    address = (str(base.hostname), int(base.port or 80))
    role_key = runner_load.make_role_key(address)
    clients = [runner_load.Client(runner_load.Connection(address), role_key) for _ in range(32)]
    first_tokens = []
    for client in clients:
        client.new_session()
        first_tokens.append(client.tokens["refresh_token"])
    barrier = threading.Barrier(len(clients))
    rounds = 2 * len(runner_load.MIX)

    def work(client: runner_load.Client) -> None:
        barrier.wait()
        for kind in runner_load.MIX * (rounds // len(runner_load.MIX)):
            try:
                client.one(kind)
            except runner_load.Failure as exc:
                client.errors.append((0.0, str(exc)))
            else:
                client.done.append((0.0, 0.0, kind))

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert not any(thread.is_alive() for thread in threads)
    assert [e for c in clients for e in c.errors] == []
    done = Counter(kind for c in clients for (_, _, kind) in c.done)
    assert done == {kind: 32 * rounds * n // len(runner_load.MIX)
                    for kind, n in Counter(runner_load.MIX).items()}
    # Every refresh rotated its client's token: the last one is live, and not the first.
    for client, first in zip(clients, first_tokens, strict=True):
        assert client.tokens["refresh_token"] != first
        client.one("introspect")
    for client in clients:
        client.conn.close()


def test_a_short_measure_gives_sane_figures():
    results = runner_load.measure(levels=(2, 6), seconds=1.5, warmup=0.5)

    assert set(results["levels"]) == {"2", "6"}
    for name, level in results["levels"].items():
        assert level["clients"] == int(name) and level["errors"] == 0, level["error_samples"]
        assert level["requests"] > 0 and level["rps"] > 0
        assert 0 < level["p50_ms"] <= level["p90_ms"] <= level["p99_ms"] <= level["max_ms"]
        assert level["runner_cpu_ms_per_request"] > level["children_cpu_ms_per_request"] > 0
        assert sum(k["count"] for k in level["kinds"].values()) == level["requests"]
        assert {kind for kind, k in level["kinds"].items() if k["count"]} == set(runner_load.MIX)
    rows = runner_load.budget_rows({"runner": {"levels": {"8": results["levels"]["2"],
                                                          "32": results["levels"]["6"]}}})
    assert [what for what, *_ in rows] == ["local runner: req/s at 32 clients ≥ at 8",
                                           "local runner: p99 at 32 clients < 1 s"]
    table = runner_load.runner_table(results)
    assert table[2].startswith("| clients |") and len(table) == 4 + len(results["levels"]) + 1


def test_the_budget_rows_miss_when_32_clients_are_slower_than_8_or_any_request_failed():
    def level(rps: float, p99: float, errors: int = 0) -> dict[str, float]:
        return {"rps": rps, "p99_ms": p99, "errors": errors}

    def verdicts(few: dict[str, float], many: dict[str, float]) -> list[str]:
        return [row[3] for row in runner_load.budget_rows({"runner": {"levels": {"8": few, "32": many}}})]

    assert verdicts(level(300, 50), level(310, 900)) == ["ok", "ok"]
    assert verdicts(level(300, 50), level(290, 200)) == ["**MISS**", "ok"]
    assert verdicts(level(300, 50), level(310, 1000)) == ["ok", "**MISS**"]
    assert verdicts(level(300, 50, errors=1), level(310, 200)) == ["**MISS**", "ok"]
    assert verdicts(level(300, 50), level(310, 200, errors=2)) == ["**MISS**", "**MISS**"]
