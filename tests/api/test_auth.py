"""Who may call the API: a valid, unrevoked key of an open store, acting only in its store's programs;
a member's own session on /api/v1/me/ and nothing else; a rate limit per key."""

import datetime

import pytest
from django.utils import timezone

from members import services as member_services
from members.models import StoreAPIKey
from tests.api.conftest import client_for, error_of, give_voucher
from tests.factories import StoreFactory

pytestmark = pytest.mark.django_db


def card_url(account) -> str:
    return f"/api/v1/members/{account.member.member_no}/"


def test_no_key_is_refused_with_how_to_send_one(customer, shop):
    response = client_for().get(card_url(customer()))

    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"
    assert response.headers["WWW-Authenticate"] == "Api-Key"


@pytest.mark.parametrize("header", ["Api-Key nonsense", "Api-Key abc.def", "Bearer something", "Api-Key "])
def test_a_wrong_key_is_refused(customer, store_key, header):
    prefix = store_key[0].prefix
    header = header.replace("abc", prefix)  # the right prefix with a wrong secret is refused too
    client = client_for()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get(card_url(customer()))

    assert response.status_code == 401
    assert error_of(response)["code"] in {"api_key_invalid", "not_authenticated"}


def test_a_revoked_key_is_refused_at_once(api, customer, store_key):
    account = customer()
    assert api.get(card_url(account)).status_code == 200

    member_services.api_key_revoke(api_key=store_key[0])
    response = api.get(card_url(account))

    assert response.status_code == 401
    error = error_of(response)
    assert error["code"] == "api_key_invalid"
    assert "revoked" in error["message"]


def test_an_expired_key_and_a_closed_stores_key_are_refused(api, customer, store_key, store):
    account = customer()
    StoreAPIKey.objects.filter(pk=store_key[0].pk).update(expiry_date=timezone.now() - datetime.timedelta(minutes=1))

    expired = api.get(card_url(account))

    StoreAPIKey.objects.filter(pk=store_key[0].pk).update(expiry_date=None)
    store.is_active = False
    store.save()
    closed = api.get(card_url(account))

    assert (expired.status_code, closed.status_code) == (401, 401)
    assert "expired" in error_of(expired)["message"]
    assert "closed" in error_of(closed)["message"]


def test_a_key_acts_only_in_its_stores_programs(api, elsewhere, rows_written):
    """Another store's member, purchase and voucher are 'not found' (their existence is not revealed)."""
    from loyalty import services as engine_services

    bought = engine_services.earn_for_purchase(
        account=elsewhere,
        amount="10.00",
        currency="EUR",
        receipt_number="G-1",
        occurred_at=timezone.now(),
        idempotency_key="g-1",
    )
    voucher = give_voucher(elsewhere, "g-voucher")
    before = rows_written()
    member_no = elsewhere.member.member_no

    refusals = {
        "detail": api.get(f"/api/v1/members/{member_no}/"),
        "rewards": api.get(f"/api/v1/members/{member_no}/rewards/"),
        "purchase": api.post_keyed(
            "/api/v1/purchases/",
            {
                "member": member_no,
                "amount": "10.00",
                "currency": "EUR",
                "receipt_number": "X-1",
                "occurred_at": timezone.now().isoformat(),
            },
        ),
        "return": api.post_keyed(f"/api/v1/purchases/{bought.purchase.pk}/returns/", {"amount": "5.00"}),
        "activity": api.post_keyed("/api/v1/activities/", {"member": member_no, "activity_type": "check_in"}),
        "voucher": api.get(f"/api/v1/vouchers/{voucher.code}/"),
        "voucher use": api.post_keyed(f"/api/v1/vouchers/{voucher.code}/redeem/"),
    }

    assert {name: r.status_code for name, r in refusals.items()} == dict.fromkeys(refusals, 404)
    assert {name: error_of(r)["code"] for name, r in refusals.items()} == {
        "detail": "member_not_found",
        "rewards": "member_not_found",
        "purchase": "member_not_found",
        "return": "purchase_not_found",
        "activity": "member_not_found",
        "voucher": "voucher_not_found",
        "voucher use": "voucher_not_found",
    }
    assert rows_written() == before


def test_the_last_use_of_a_key_is_recorded(api, customer, store_key):
    assert store_key[0].last_used_at is None

    api.get(card_url(customer()))

    store_key[0].refresh_from_db()
    assert timezone.now() - store_key[0].last_used_at < datetime.timedelta(seconds=30)


def test_a_signed_in_member_or_clerk_cannot_use_the_till_api(client, customer, clerk_user, member_user):
    account = customer()
    for user in (clerk_user, member_user):
        client.force_login(user)

        response = client.get(card_url(account))

        assert response.status_code == 401, user


def test_each_key_has_its_own_rate_limit_with_a_clear_429(api, customer, shop, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"pos_key": "3/min"}}
    other_store = StoreFactory(code="antwerp-02")
    shop.stores.add(other_store)
    other_till = client_for(member_services.api_key_create(store=other_store, name="Till A")[1])
    url = card_url(customer())

    statuses = [api.get(url).status_code for _ in range(4)]
    limited = api.get(url)

    assert statuses == [200, 200, 200, 429]
    error = error_of(limited)
    assert error["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "wait" in error["message"]
    assert other_till.get(url).status_code == 200  # another key, another budget


# --- the member's own app ---------------------------------------------------------------------


def test_a_member_sees_only_their_own_accounts_and_vouchers(client, customer, member_user, shop, store):
    from loyalty import services as engine_services

    mine = engine_services.member_enrol(
        program=shop,
        channel="online",
        user=member_user,
        first_name="Ann",
        last_name="Smets",
        email=member_user.email,
        member_type="consumer",
        accept_terms=True,
    )
    someone_else = customer()
    give_voucher(mine, "mine", description="Mine")
    give_voucher(someone_else, "theirs", amount="50.00", description="Theirs")
    client.force_login(member_user)

    me = client.get("/api/v1/me/")
    vouchers = client.get("/api/v1/me/vouchers/")

    assert me.status_code == 200, me.content
    assert me.json()["member_no"] == mine.member.member_no
    assert [a["balance"] for a in me.json()["accounts"]] == [100]
    assert [v["description"] for v in vouchers.json()["results"]] == ["Mine"]


def test_the_members_endpoints_refuse_anonymous_callers_and_store_keys(client, api, customer):
    customer()
    for caller in (client, api):
        for url in ("/api/v1/me/", "/api/v1/me/vouchers/"):
            response = caller.get(url)

            assert response.status_code in {401, 403}, (caller, url)
            assert error_of(response)["code"] in {"not_authenticated", "permission_denied"}


def test_a_staff_user_without_a_membership_is_told_so(client, clerk_user):
    client.force_login(clerk_user)

    response = client.get("/api/v1/me/")

    assert response.status_code == 404
    assert error_of(response)["code"] == "member_not_found"
