"""SPEC §11: the CLI warns on stderr, once a command, when the token it uses expires
within 7 days (the server's ``Tessera-Token-Expiration`` header)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.cli.test_commands import ME, NOW, SERVER, Fake, invoke

DAY = 86400
# NOW = 1_800_000_000 = 2027-01-15T08:00:00Z
IN_3_DAYS = "2027-01-18T08:00:00Z"
IN_8_DAYS = "2027-01-23T08:00:00Z"


def me_expiring(value: str | None) -> Any:
    headers = {"Tessera-Token-Expiration": value} if value else {}
    return lambda _: httpx.Response(200, json=ME, headers=headers)


def test_a_token_expiring_within_7_days_is_warned_about_on_stderr(config_home):
    fake = Fake({("GET", "/v1/me"): me_expiring(IN_3_DAYS)})
    result = invoke(fake, "whoami", "--server", SERVER, env={"TESSERA_TOKEN": "tsp_x"})
    assert result.exit_code == 0, result.output
    assert result.stderr == (f"warning: the token in use expires in 3 days ({IN_3_DAYS}); create a "
                             "new one before then (`tessera pat regenerate ID`)\n")
    assert "warning" not in result.stdout


@pytest.mark.parametrize("value", [IN_8_DAYS, None, "not a date", "2027-01-16T00:00:00"])
def test_no_warning_for_a_later_expiry_or_no_usable_header(config_home, value):
    fake = Fake({("GET", "/v1/me"): me_expiring(value)})
    result = invoke(fake, "whoami", "--server", SERVER, env={"TESSERA_TOKEN": "tsp_x"})
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def test_the_warning_comes_once_a_command_whatever_its_calls(config_home, capsys):
    from tessera_cli.context import App

    fake = Fake({("GET", "/v1/me"): me_expiring(IN_3_DAYS)})
    app = App(SERVER, token="tsp_x", transport=httpx.MockTransport(fake), clock=lambda: NOW)
    app.api("GET", "/v1/me")
    app.api("GET", "/v1/me")
    assert len(fake.requests) == 2
    assert capsys.readouterr().err.count("expires in 3 days") == 1


def test_the_warning_counts_from_the_clock_of_the_command(config_home):
    fake = Fake({("GET", "/v1/me"): me_expiring(IN_8_DAYS)})
    result = invoke(fake, "whoami", "--server", SERVER, env={"TESSERA_TOKEN": "tsp_x"},
                    now=NOW + 2 * DAY)
    assert "expires in 6 days" in result.stderr
