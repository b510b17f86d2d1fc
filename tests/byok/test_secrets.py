"""Keys at rest: encrypted in the database, rotated with the key ring, never shown again."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command
from django.db import connection
from django.test import Client
from pytest_django.fixtures import Settings

from byok.models import UserCustomProvider, UserProviderKey
from tests.byok.helpers import ALICE_ENDPOINT_KEY, ALICE_OPENAI_KEY, assert_no_secret
from vero.lib.secrets import secret_current_key_id, secret_decrypt

NEW_RING_KEY = "the key ring's new first key, added this quarter"


def _raw_column(table: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT api_key_encrypted FROM {table} WHERE id = %s", [pk])
        (value,) = cursor.fetchone()
    return str(value)


def test_alices_key_is_stored_encrypted_and_the_raw_column_does_not_contain_it(
    alice_openai_key: UserProviderKey, alice_endpoint: UserCustomProvider
) -> None:
    raw_key = _raw_column(UserProviderKey._meta.db_table, alice_openai_key.pk)
    raw_endpoint = _raw_column(UserCustomProvider._meta.db_table, alice_endpoint.pk)

    assert ALICE_OPENAI_KEY not in raw_key and raw_key.startswith("v1$")
    assert ALICE_ENDPOINT_KEY not in raw_endpoint and raw_endpoint.startswith("v1$")
    assert ALICE_OPENAI_KEY[-8:] not in raw_key
    assert secret_decrypt(token=raw_key) == ALICE_OPENAI_KEY
    assert alice_openai_key.api_key_last_four == ALICE_OPENAI_KEY[-4:]


def test_reencrypt_secrets_moves_byok_keys_to_a_new_first_key(
    settings: Settings,
    alice_openai_key: UserProviderKey,
    alice_endpoint: UserCustomProvider,
) -> None:
    old_key_token = _raw_column(UserProviderKey._meta.db_table, alice_openai_key.pk)
    old_endpoint_token = _raw_column(UserCustomProvider._meta.db_table, alice_endpoint.pk)
    settings.SECRETS_ENCRYPTION_KEYS = [NEW_RING_KEY, *settings.SECRETS_ENCRYPTION_KEYS]

    call_command("reencrypt_secrets", stdout=StringIO())

    new_key_token = _raw_column(UserProviderKey._meta.db_table, alice_openai_key.pk)
    new_endpoint_token = _raw_column(UserCustomProvider._meta.db_table, alice_endpoint.pk)
    assert new_key_token != old_key_token and new_endpoint_token != old_endpoint_token
    assert new_key_token.split("$")[1] == secret_current_key_id()
    assert new_endpoint_token.split("$")[1] == secret_current_key_id()
    assert secret_decrypt(token=new_key_token) == ALICE_OPENAI_KEY
    assert secret_decrypt(token=new_endpoint_token) == ALICE_ENDPOINT_KEY
    # Only the old key can open the old tokens, and no row holds one any more.
    assert not UserProviderKey.objects.filter(api_key_encrypted=old_key_token).exists()
    assert not UserCustomProvider.objects.filter(api_key_encrypted=old_endpoint_token).exists()


def test_the_page_shows_that_a_key_is_set_and_its_last_four_but_never_the_key(
    alice_client: Client, alice_openai_key: UserProviderKey, alice_endpoint: UserCustomProvider
) -> None:
    response = alice_client.get("/settings/keys/")

    assert response.status_code == 200
    body = response.content.decode()
    assert "…" + ALICE_OPENAI_KEY[-4:] in body
    assert "…" + ALICE_ENDPOINT_KEY[-4:] in body
    assert_no_secret(response)
    assert alice_openai_key.api_key_encrypted not in body


def test_a_refused_key_form_does_not_send_the_key_back(alice_client: Client) -> None:
    response = alice_client.post(
        "/settings/keys/provider", {"provider": "nonsense", "api_key": ALICE_OPENAI_KEY}
    )

    assert response.status_code == 400
    assert_no_secret(response)
    assert not UserProviderKey.objects.exists()


def test_the_admin_sees_users_keys_by_their_last_four_only(
    admin_client: Client,
    alice_openai_key: UserProviderKey,
    alice_endpoint: UserCustomProvider,
) -> None:
    pages = [
        admin_client.get("/admin/byok/userproviderkey/"),
        admin_client.get(f"/admin/byok/userproviderkey/{alice_openai_key.pk}/change/"),
        admin_client.get("/admin/byok/usercustomprovider/"),
        admin_client.get(f"/admin/byok/usercustomprovider/{alice_endpoint.pk}/change/"),
        admin_client.get("/admin/byok/userbyokmodel/"),
    ]

    assert [page.status_code for page in pages] == [200] * 5
    assert ALICE_OPENAI_KEY[-4:] in pages[0].content.decode()
    for page in pages:
        assert_no_secret(page)
        assert alice_openai_key.api_key_encrypted not in page.content.decode()
        assert alice_endpoint.api_key_encrypted not in page.content.decode()
