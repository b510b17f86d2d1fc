"""The admin's bucket list: readable, searchable, filterable, and able to reset buckets."""

from __future__ import annotations

from typing import Any

from django.test import Client

from accounts.models import User
from ratelimit.models import Bucket, UserRateLimit
from ratelimit.services import request_admit

CHANGELIST = "/admin/ratelimit/userratelimit/"


def spend(user: User, bucket: str, count: int) -> None:
    for _ in range(count):
        request_admit(user=user, bucket=bucket)


def test_the_list_shows_each_bucket_with_what_it_holds_now(
    admin_client: Client, alice: User, bob: User
) -> None:
    spend(alice, Bucket.PLATFORM, 3)
    spend(bob, Bucket.SYNC, 1)

    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    body = response.content.decode()
    assert "alice@example.com" in body
    assert "bob@example.com" in body
    assert "17 / 20" in body  # alice: default tier capacity 20, after three requests
    assert "+20 in 1 h" in body


def test_the_list_is_searchable_by_email_and_filterable_by_bucket(
    admin_client: Client, alice: User, bob: User
) -> None:
    spend(alice, Bucket.PLATFORM, 1)
    spend(bob, Bucket.PLATFORM, 1)
    spend(bob, Bucket.SYNC, 1)

    by_email = admin_client.get(CHANGELIST, {"q": "alice@"}).content.decode()
    by_bucket = admin_client.get(CHANGELIST, {"bucket__exact": "sync"}).content.decode()

    assert "alice@example.com" in by_email and "bob@example.com" not in by_email
    assert "bob@example.com" in by_bucket and "alice@example.com" not in by_bucket


def test_a_bucket_page_shows_its_stored_state(admin_client: Client, alice: User) -> None:
    spend(alice, Bucket.PLATFORM, 1)
    row = UserRateLimit.objects.get(user=alice)

    response = admin_client.get(f"{CHANGELIST}{row.pk}/change/")

    assert response.status_code == 200
    assert "alice@example.com" in response.content.decode()


def test_the_reset_action_fills_the_selected_buckets_only(
    admin_client: Client, alice: User, bob: User
) -> None:
    spend(alice, Bucket.PLATFORM, 10)
    spend(bob, Bucket.PLATFORM, 10)
    alices = UserRateLimit.objects.get(user=alice)

    response = admin_client.post(
        CHANGELIST,
        {"action": "reset_buckets", "_selected_action": [alices.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "Reset 1 bucket: full again" in response.content.decode()
    assert not UserRateLimit.objects.filter(user=alice).exists()
    assert UserRateLimit.objects.filter(user=bob).exists()


def test_people_who_are_not_staff_cannot_see_buckets(alice_client: Client) -> None:
    response = alice_client.get(CHANGELIST)

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_list_looks_tiers_up_once_not_once_per_row(
    admin_client: Client, django_assert_max_num_queries: Any
) -> None:
    for n in range(30):
        user = User.objects.create(is_guest=n % 2 == 0)
        spend(user, Bucket.PLATFORM, 1)

    with django_assert_max_num_queries(12):
        response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
