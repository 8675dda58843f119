import json


def test_discovery_names_the_issuer_and_jwks(client):
    response = client.http.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    doc = json.loads(response.body)
    assert doc["issuer"] == "https://tessera.test"
    assert doc["jwks_uri"] == "https://tessera.test/.well-known/jwks.json"
    # OIDC Core §15.1: RS256 beside the default ES256
    assert doc["id_token_signing_alg_values_supported"] == ["ES256", "RS256"]


def test_the_rfc8414_path_serves_the_same_document(client):
    openid = client.http.get("/.well-known/openid-configuration")
    oauth = client.http.get("/.well-known/oauth-authorization-server")
    assert oauth.status_code == 200
    assert oauth.headers["Content-Type"] == "application/json"
    assert json.loads(oauth.body) == json.loads(openid.body)


def test_jwks_publishes_both_families_with_alg_and_use(client, ctr):
    ctr.keyring.ensure("RS256")
    keys = json.loads(client.http.get("/.well-known/jwks.json").body)["keys"]
    assert sorted((k["kty"], k["alg"], k["use"]) for k in keys) == [
        ("EC", "ES256", "sig"), ("EC", "ES256", "sig"), ("RSA", "RS256", "sig"),
        ("RSA", "RS256", "sig")]
    assert all("d" not in k and "p" not in k for k in keys)


def test_jwks_publishes_current_and_next_key_without_private_parts(client, ctr):
    response = client.http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = json.loads(response.body)["keys"]
    assert len(keys) == 2
    for key in keys:
        assert key["kty"] == "EC" and key["crv"] == "P-256" and key["alg"] == "ES256"
        assert "d" not in key
    assert ctr.keyring.current_kid() in {k["kid"] for k in keys}


def test_jwks_is_created_once_and_stable(client):
    first = json.loads(client.http.get("/.well-known/jwks.json").body)
    second = json.loads(client.http.get("/.well-known/jwks.json").body)
    assert first == second
