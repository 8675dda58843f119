"""A malformed seed document is refused before anything is written."""

from __future__ import annotations

import pytest

from tessera_admin.seed import SeedError, SeedReport, load_seed


@pytest.mark.parametrize(("data", "message"), [
    ([], "a seed document must be a JSON object"),
    ({"users": {}}, "'users' must be a list"),
    ({"users": ["alice"]}, "users[0] must be an object"),
    ({"users": [{"password": "password4x"}]}, "users[0]: missing 'username'"),
    ({"users": [{"username": "x", "password": 5}]}, "users[0]: 'password' must be a string"),
    ({"users": [{"username": "x", "password": "password4x", "scopes": "openid"}]},
     "users[0]: 'scopes' must be a list of strings"),
    ({"clients": [{"client_id": "c", "public": "yes"}]}, "clients[0]: 'public' must be true or false"),
    ({"clients": [{}]}, "clients[0]: missing 'client_id'"),
    ({"clients": [{"client_id": "c", "redirect_uris": ["http://evil.example\\@127.0.0.1/cb"]}]},
     "clients[0]: redirect URI 'http://evil.example\\\\@127.0.0.1/cb' must not contain userinfo "
     "or '@' (RFC 9700 §4.1.3)"),
    ({"clients": [{"client_id": "c", "redirect_uris": ["https://app.example/cb", "http://127.1/cb"]}]},
     "clients[0]: redirect URI 'http://127.1/cb' must write a numeric host as a dotted quad like "
     "192.0.2.1"),
    ({"clients": [{"client_id": "c", "post_logout_redirect_uris": ["https://app.example/%2F"]}]},
     "clients[0]: redirect URI 'https://app.example/%2F' must not percent-encode a delimiter, dot "
     "or control character (%2F)"),
])
def test_malformed_documents_name_the_entry(data, message):
    # No identities service at all: the shape is checked before any write.
    with pytest.raises(SeedError) as exc:
        load_seed(None, data)
    assert str(exc.value) == message


def test_report_lines_summarise_without_file_secrets():
    report = SeedReport(created_users=["alice"], skipped_clients=["cli"],
                        generated_secrets={"svc": "tsc_generated"})
    assert report.lines() == ["created user alice", "skipped existing client cli",
                              "generated secret for client svc: tsc_generated (shown once)"]
