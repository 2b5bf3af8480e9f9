"""Fixtures of the point-of-sale API tests: a store running the conftest program, its key, a client
that sends the key, customers enrolled at the store, and a count of every row a refusal must not write."""

import itertools

import pytest
from rest_framework.test import APIClient

from loyalty import services as engine_services
from loyalty.models import Account, Activity, LedgerEntry, Purchase, PurchaseReturn
from members import services as member_services
from members.models import Member
from rewards.models import Redemption, Voucher
from tests.factories import ProgramFactory, StoreFactory, TierFactory


@pytest.fixture
def shop(program, store):
    """The conftest program (1 point per euro, Bronze to Platinum), run by `store`, with a welcome bonus
    of 100 points and a 14-day return window (purchase points are pending until it closes)."""
    program.stores.add(store)
    program.welcome_bonus = 100
    program.pending_days = 14
    program.save()
    return program


@pytest.fixture
def store_key(shop, store):
    """(StoreAPIKey, the key itself) for `store`."""
    return member_services.api_key_create(store=store, name="Till 1")


def client_for(key: str | None = None) -> APIClient:
    client = APIClient()
    if key:
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.fixture
def api(store_key):
    """An API client of `store`'s till. `api.post_keyed(url, body)` sends a fresh Idempotency-Key."""
    client = client_for(store_key[1])
    counter = itertools.count(1)

    def post_keyed(url, data=None, key=None, **extra):
        return client.post(url, data, format="json", HTTP_IDEMPOTENCY_KEY=key or f"k-{next(counter)}", **extra)

    client.post_keyed = post_keyed
    return client


@pytest.fixture
def customer(shop, store):
    """customer(**member fields) -> Account of `shop`, enrolled at `store`'s counter (100 welcome points)."""
    counter = itertools.count(1)

    def _customer(**fields):
        n = next(counter)
        fields.setdefault("first_name", "Lotte")
        fields.setdefault("last_name", f"Janssens{n}")
        fields.setdefault("email", f"lotte{n}@example.com")
        fields.setdefault("member_type", "consumer")
        return engine_services.member_enrol(
            program=shop, channel="counter", store=store, home_store=store, accept_terms=True, **fields
        )

    return _customer


@pytest.fixture
def elsewhere():
    """Another store running another program, with a member of its own: what a key must never reach."""
    store = StoreFactory(code="gent-01", name="Gent")
    program = ProgramFactory(name="Green Club", slug="green")
    TierFactory(program=program, rank=1, name="Member", threshold=0)
    program.stores.add(store)
    account = engine_services.member_enrol(
        program=program,
        channel="counter",
        store=store,
        home_store=store,
        accept_terms=True,
        first_name="Wim",
        last_name="Elders",
        email="wim@example.com",
        member_type="consumer",
    )
    return account


@pytest.fixture
def rows_written():
    """rows_written() -> counts of every table an API write touches: compare before and after a refusal."""

    def _rows_written() -> dict:
        return {
            model.__name__: model.objects.count()
            for model in (Member, Account, LedgerEntry, Purchase, PurchaseReturn, Activity, Redemption, Voucher)
        } | {"vouchers redeemed": Voucher.objects.filter(status=Voucher.Status.REDEEMED).count()}

    return _rows_written


def error_of(response) -> dict:
    """The error object of a refusal, after checking it has the one format."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    assert body["error"]["message"], body
    return body["error"]


def replayed(response) -> bool:
    return response.headers.get("Idempotent-Replayed") == "true"


def give_voucher(account, key: str, *, amount="5.00", description="Gift", days: int = 30):
    """A voucher issued to `account` (as a campaign would), valid from today for `days` days."""
    import datetime

    from django.utils import timezone

    from rewards import services as reward_services

    today = timezone.localdate()
    return reward_services.voucher_issue(
        account=account,
        description=description,
        issue_key=key,
        amount=amount,
        valid_from=today,
        valid_until=today + datetime.timedelta(days=days),
    )
