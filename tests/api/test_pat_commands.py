"""One PAT rule set (issue 23 item 3): the API and the /tokens dashboard validate a
PAT's settings into the same command (``api_models.PatCreate``, ``PatEdit``, ...);
the service takes the validated command and checks only what needs the stage or
the owner."""

from __future__ import annotations

import html
import re

import pytest

from chalicelib.api_models import PatCopy, PatCreate, PatEdit, PatRemoveMany
from chalicelib.errors import Unprocessable
from tests.api.helpers import body, seed
from tests.api.test_pages_tokens import Browser, csrf, sign_in
from tests.api.test_pats import NEXT_MONTH, assert_problem, call
from tests.api.test_pats import alice as alice  # the API caller, a fixture


def page_error(page) -> str:
    found = re.search(r'<p class="error" role="alert">([^<]*)</p>', page.body.decode())
    assert found, page.body[:400]
    return html.unescape(found.group(1))


@pytest.mark.parametrize("fields", [
    {"description": " ", "expires_at": "2027-02-30", "scopes": []},
    {"description": "x" * 201, "scopes": []},
    {"description": "ci", "expires_at": "2027-13-01", "scopes": []},
])
def test_the_dashboard_and_the_api_give_one_answer_for_the_same_bad_settings(client, alice,
                                                                             fields):
    api = assert_problem(call(client, "post", "/v1/tokens", alice, fields), 422)
    browser = Browser(client)
    sign_in(browser)
    form = {"csrf": csrf(browser.get("/account/tokens")), "description": fields["description"],
            "expires_at": fields.get("expires_at", NEXT_MONTH)}   # no scope ticked: []
    page = browser.post("/account/tokens/generate", form)
    assert page.status_code == 422
    assert page_error(page) == api["detail"] and ";" in api["detail"]


@pytest.fixture
def alice_user(ctr):
    seed(ctr)
    return ctr.identities.find_user("alice")


def test_the_service_takes_the_validated_command(ctr, alice_user):
    pats = ctr.pats
    issued = pats.generate(alice_user, PatCreate(description=" ci ", scopes=["api:read"],
                                                 expires_at=NEXT_MONTH))
    assert issued.pat.description == "ci" and issued.pat.scopes == ("api:read",)
    edited = pats.edit(alice_user, issued.pat.id, PatEdit(api_set="ide-plugins"))
    assert edited.api_set == "ide-plugins" and edited.description == "ci"
    copied = pats.copy(alice_user, issued.pat.id, PatCopy(description="copy"))
    assert copied.pat.api_set == "ide-plugins" and copied.pat.expires_on == NEXT_MONTH
    removed, missing = pats.remove_many(alice_user, PatRemoveMany(ids=[copied.pat.id, "x"]))
    assert (removed, missing) == ([copied.pat.id], ["x"])


def test_the_stage_and_owner_rules_stay_with_the_service(ctr, alice_user):
    """A well-formed command may still ask for what the stage or the owner does not allow."""
    pats = ctr.pats
    with pytest.raises(Unprocessable, match="Unknown scopes: nope"):
        pats.generate(alice_user, PatCreate(description="ci", scopes=["nope"]))
    with pytest.raises(Unprocessable, match="api_set must be one of"):
        pats.generate(alice_user, PatCreate(description="ci", api_set="nope"))
    with pytest.raises(Unprocessable, match="expires_at must be 2027-01-16 or later"):
        pats.generate(alice_user, PatCreate(description="ci", scopes=["api:read"],
                                            expires_at="2027-01-15"))


def test_new_scopes_given_as_null_are_no_choice(client, alice):
    made = body(call(client, "post", "/v1/tokens", alice,
                     {"description": "ci", "scopes": ["api:read"], "expires_at": NEXT_MONTH}))
    r = call(client, "patch", f"/v1/tokens/{made['id']}", alice, {"scopes": None})
    assert_problem(r, 422, "Give scopes (a list) or api_set (a name from GET /v1/scopes)")
