"""Fixtures of the rewards tests: accounts holding points, rewards of the `program` fixture, and a
count of every row a refused request must not write."""

import pytest

from loyalty import services as engine_services
from loyalty.models import LedgerEntry
from rewards.models import Redemption, Reward, Voucher
from tests.factories import RewardFactory


@pytest.fixture
def member_with(program, enrol):
    """member_with(points, **member fields) -> an account of `program` holding `points` (a staff credit,
    not qualifying, so the member stays Bronze)."""

    def _member_with(points: int, **member_fields):
        account = enrol(program, **member_fields)
        if points:
            engine_services.adjust(account=account, points=points, reason="Opening credit", created_by=None)
            account.refresh_from_db()
        return account

    return _member_with


@pytest.fixture
def make_reward(program):
    """make_reward(**fields) -> a reward of `program`; a EUR 5 voucher for 100 points unless told otherwise."""

    def _make_reward(**fields):
        fields.setdefault("program", program)
        return RewardFactory(**fields)

    return _make_reward


@pytest.fixture
def rows_written():
    """rows_written() -> how many redemptions, vouchers, ledger entries and rewards exist, and every
    reward's stock: compare before and after a refused request."""

    def _rows_written() -> dict:
        return {
            "redemptions": Redemption.objects.count(),
            "vouchers": Voucher.objects.count(),
            "ledger entries": LedgerEntry.objects.count(),
            "rewards": Reward.objects.count(),
            "stock": dict(Reward.objects.values_list("pk", "stock")),
        }

    return _rows_written


@pytest.fixture
def shop(program, store):
    """The conftest program, run by the clerk's store (so the clerk serves its members)."""
    program.stores.add(store)
    return program


@pytest.fixture
def signed_in_member(shop, store, member_user, buy):
    """signed_in_member(spend) -> Ann's account: signed in online, enrolled at the clerk's store, in
    Flanders, with the points of a purchase of `spend` euros."""

    def _signed_in_member(spend: str):
        account = engine_services.member_enrol(
            program=shop,
            channel="counter",
            store=store,
            home_store=store,
            user=member_user,
            first_name="Ann",
            last_name="Smets",
            email=member_user.email,
            member_type="consumer",
            region="Flanders",
            accept_terms=True,
        )
        buy(account, spend)
        account.refresh_from_db()
        return account

    return _signed_in_member
