import io

import pytest
from django.core.management import call_command

from members.models import StaffProfile, Store, User
from members.roles import Role

pytestmark = pytest.mark.django_db


def _seed(*args) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def test_seed_demo_builds_stores_in_several_regions_with_one_clerk_each_and_prints_the_logins():
    output = _seed("--members", "6")

    stores = Store.objects.all()
    assert stores.count() >= 4
    assert stores.values("region").distinct().count() >= 3
    for store in stores:
        clerk = StaffProfile.objects.get(store=store).user
        assert clerk.groups.filter(name=Role.STORE_CLERK.value).exists()
        assert clerk.email in output
    assert User.objects.filter(groups__name=Role.PROGRAM_MANAGER.value).count() == 1
    assert "manager@demo.example.com" in output
    assert "loyalty-demo" in output


def test_seed_demo_logins_work_with_the_printed_password(client):
    _seed("--members", "6")

    assert client.login(email="member01@demo.example.com", password="loyalty-demo")
    assert client.login(email="clerk.bru-01@demo.example.com", password="loyalty-demo")


def test_seed_demo_run_twice_creates_nothing_new():
    _seed("--members", "6")
    counts = (User.objects.count(), Store.objects.count(), StaffProfile.objects.count())

    _seed("--members", "6")

    assert (User.objects.count(), Store.objects.count(), StaffProfile.objects.count()) == counts


def test_seed_demo_is_deterministic_for_a_seed():
    first = _seed("--members", "8", "--seed", "7")
    names_first = list(User.objects.order_by("email").values_list("email", "first_name", "last_name"))
    User.objects.filter(staff_profile__isnull=True).delete()

    second = _seed("--members", "8", "--seed", "7")

    assert list(User.objects.order_by("email").values_list("email", "first_name", "last_name")) == names_first
    assert first == second


def test_seed_demo_gives_the_sign_in_members_a_history_in_each_tier():
    from loyalty.models import Account

    output = _seed("--members", "6")

    tiers = [Account.objects.get(member__email=f"member0{n}@demo.example.com").tier.name for n in range(1, 5)]
    assert tiers == ["Platinum", "Gold", "Silver", "Bronze"]
    assert "Platinum" in output
    assert Account.objects.get(member__email="member01@demo.example.com").entries.count() > 10
