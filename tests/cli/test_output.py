"""Durations in words and plain tables."""

from __future__ import annotations

import pytest
from tessera_cli.output import cell, relative, table, when


@pytest.mark.parametrize("seconds,words", [
    (300, "in 5 minutes"), (299, "in 5 minutes"), (60, "in 1 minute"), (45, "in 45 seconds"),
    (1, "in 1 second"), (0, "now"), (3600, "in 1 hour"), (36000, "in 10 hours"),
    (86400 * 3 + 5, "in 3 days"), (-120, "2 minutes ago"), (-7200, "2 hours ago"),
])
def test_relative_times_read_as_words(seconds, words):
    assert relative(seconds) == words


def test_times_are_shown_in_utc():
    assert when(0) == "1970-01-01 00:00:00 UTC"
    assert when(None) is None


def test_cells_render_lists_booleans_and_absence():
    assert cell(["a", "b"]) == "a b"
    assert cell(True) == "yes" and cell(False) == "no"
    assert cell(None) == "-" and cell([]) == "-"


def test_a_table_pads_columns_and_an_empty_one_says_so_on_stderr(capsys):
    table([{"id": "1", "name": "alpha"}, {"id": "22", "name": "b"}], [("id", "ID"), ("name", "NAME")],
          "Nothing.")
    assert capsys.readouterr().out.splitlines() == ["ID  NAME", "1   alpha", "22  b"]
    table([], [("id", "ID")], "Nothing.")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "Nothing.\n"
