"""Tessera's benchmark harness (issue 6, SPEC §9): ``python -m bench``.

Cold start next to its floor, CPU per warm request, DynamoDB work per request,
purge scaling and a modeled cost per million requests; markdown tables on
stdout, JSON in ``bench/results/latest.json``. See docs/benchmark.md.
"""
