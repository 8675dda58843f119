"""Chalice's own error bodies never reach a client (issue: one error model)."""

import json

PROBLEM_401 = {"type": "about:blank", "title": "Unauthorized", "status": 401,
               "detail": "Provided token is not valid"}


def test_wrong_method_is_problem_json(client):
    response = client.http.post("/.well-known/jwks.json", body=b"{}",
                                headers={"Content-Type": "application/json"})
    assert response.status_code == 405
    assert response.headers["Content-Type"] == "application/problem+json"
    body = json.loads(response.body)
    assert body["status"] == 405 and body["title"] == "Method Not Allowed"
    assert "Code" not in body and "Message" not in body


def test_wrong_method_on_a_page_is_an_html_page(client):
    """SPEC §8: a 405 on the web pages is an HTML page, in Lambda as in the local runner."""
    response = client.http.request("PUT", "/tokens", body=b"", headers={})
    assert response.status_code == 405
    assert response.headers["Content-Type"].startswith("text/html")
    assert b"Method Not Allowed" in response.body and b'"Code"' not in response.body


def test_wrong_method_on_an_oauth_endpoint_is_oauth_json(client):
    response = client.http.request("PUT", "/oauth/token", body=b"", headers={})
    assert response.status_code == 405
    body = json.loads(response.body)
    assert body["error"] == "invalid_request" and response.headers["Cache-Control"] == "no-store"


def test_unsupported_content_type_on_get_is_problem_json(client):
    response = client.http.get("/.well-known/jwks.json", headers={"Content-Type": "text/csv"})
    assert response.status_code == 415
    body = json.loads(response.body)
    assert body["title"] == "Unsupported Media Type" and "Code" not in body


def test_a_401_raised_without_a_challenge_still_gets_one():
    """RFC 9110 §11.6.1: every 401 names a scheme, even where the raise site gave none."""
    from chalicelib.errors import InvalidClient, Unauthorized
    from chalicelib.http import render_oauth_error, render_problem

    problem = render_problem(Unauthorized())
    assert problem.headers["WWW-Authenticate"] == ['Bearer realm="tessera"',
                                                   'Basic realm="tessera", charset="UTF-8"']
    oauth = render_oauth_error(InvalidClient("no"))
    assert oauth.headers["WWW-Authenticate"] == 'Basic realm="tessera", charset="UTF-8"'
