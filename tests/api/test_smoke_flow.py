from tests.api.helpers import bearer, body, refresh, seed, tokens


def test_login_me_refresh_logout(client, ctr):
    seed(ctr)
    t = tokens(client, scope="openid profile email")
    assert t["token_type"] == "Bearer" and t["expires_in"] == 300 and "id_token" in t
    me = client.http.get("/v1/me", headers=bearer(t["access_token"]))
    assert me.status_code == 200, me.body
    assert body(me)["email"] == "alice@example.com"
    r = refresh(client, t["refresh_token"])
    assert r.status_code == 200, r.body
    assert body(r)["refresh_token"] != t["refresh_token"]
