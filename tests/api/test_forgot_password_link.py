"""Every sign-in form offers "Forgot password?", a link to the password reset
page (SPEC §11): the console's, the authorize page's and the device page's."""

from __future__ import annotations

import re

import pytest

from tests.api.test_authorization_code import authorize_path, clients  # noqa: F401 (fixture)
from tests.api.test_device_page import text

FORGOT = re.compile(r'<a href="/password-reset">Forgot password\?</a>')


@pytest.mark.parametrize("path", ["/account", "/account/tokens", "/device", authorize_path()])
def test_every_sign_in_form_links_to_the_password_reset(clients, path):  # noqa: F811
    page = clients.http.get(path)
    html = text(page)
    assert page.status_code == 200 and 'name="password"' in html, html
    assert FORGOT.search(html), html


def test_the_link_leads_to_the_reset_page(clients):  # noqa: F811
    page = clients.http.get("/password-reset")
    assert page.status_code == 200 and 'name="email"' in text(page)
