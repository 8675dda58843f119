import json


def test_discovery_names_the_issuer_and_jwks(client):
    response = client.http.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    doc = json.loads(response.body)
    assert doc["issuer"] == "https://tessera.test"
    assert doc["jwks_uri"] == "https://tessera.test/.well-known/jwks.json"
    assert doc["id_token_signing_alg_values_supported"] == ["ES256"]


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
