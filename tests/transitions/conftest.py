"""A transition scenario: the Blue program moving to Green, with members in every state the issue lists."""

import datetime
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns import transitions
from campaigns.models import MigrationPlan, Transition
from loyalty import services
from loyalty.models import Account, Program
from rewards import services as reward_services
from tests.factories import MemberFactory, ProgramFactory, RewardFactory, TermsVersionFactory, TierFactory


@dataclass
class Scenario:
    old: Program
    new: Program
    transition: Transition
    plan: MigrationPlan
    accounts: dict[str, Account]  # by role in the scenario

    def reload(self) -> None:
        self.transition.refresh_from_db()
        for account in self.accounts.values():
            account.refresh_from_db()


def _credit(account, points, note):
    services.adjust(account=account, points=points, reason=note, created_by=None, idempotency_key=f"seed-{account.pk}")


@pytest.fixture
def new_program(db):
    green = ProgramFactory(name="Green Club", slug="green", point_value=Decimal("0.02"))
    for rank, name, threshold in ((1, "Member", 0), (2, "Plus", 500), (3, "Top", 2000)):
        TierFactory(program=green, rank=rank, name=name, threshold=threshold)
    return green


@pytest.fixture
def scenario(program, new_program, buy, clerk_user, store):
    """Blue (the `program` fixture, point value EUR 0.01, 14 days' return window) moves to Green at 2 new
    points for 3 old, rounded down; Silver maps to Plus, other tiers are re-evaluated; members who never
    accept get a voucher worth 110% of their balance's value."""
    today = timezone.localdate()
    program.pending_days = 14
    program.save()
    program.stores.add(store)
    terms = TermsVersionFactory(program=program, version="2027", requires_reacceptance=True, effective_on=today)
    transition = transitions.transition_create(
        program=program,
        terms=terms,
        name="Blue becomes Green",
        announce_on=today,
        accept_by=today + datetime.timedelta(days=30),
        cutover_on=today + datetime.timedelta(days=31),
    )
    plan = transitions.migration_plan_save(
        transition=transition,
        target_program=new_program,
        conversion_rate=Decimal("0.6667"),
        rounding="down",
        tier_mapping={str(program.tiers.get(name="Silver").pk): new_program.tiers.get(name="Plus").pk},
        unaccepted=MigrationPlan.Unaccepted.VOUCHER,
        uplift_percent=Decimal("10"),
    )
    roles = {
        "online": {"first_name": "Olive", "language": "fr"},
        "desk": {"first_name": "Desmond"},
        "never": {"first_name": "Nora"},
        "no_email": {
            "first_name": "Ned",
            "email": "",
            "street": "Rue Haute 12",
            "postal_code": "1000",
            "city": "Bruxelles",
        },
        "zero_accepted": {"first_name": "Zoe"},
        "zero_never": {"first_name": "Zack"},
        "pending_never": {"first_name": "Pam"},
        "voucher_holder": {"first_name": "Victor"},
        "closed_member": {"first_name": "Cleo"},
    }
    accounts = {role: services.enrol(member=MemberFactory(**fields), program=program) for role, fields in roles.items()}
    _credit(accounts["online"], 1234, "Opening")
    _credit(accounts["desk"], 500, "Opening")
    buy(accounts["desk"], Decimal("200"))  # 200 pending points
    _credit(accounts["never"], 800, "Opening")
    _credit(accounts["no_email"], 300, "Opening")
    _credit(accounts["pending_never"], 100, "Opening")
    buy(accounts["pending_never"], Decimal("50"))
    _credit(accounts["voucher_holder"], 1100, "Opening")  # reaches Silver? adjustments do not qualify
    reward = RewardFactory(program=program, points_cost=100)
    reward_services.redeem(account=accounts["voucher_holder"], reward=reward, idempotency_key="r1", channel="online")
    _credit(accounts["closed_member"], 250, "Opening")
    silver = program.tiers.get(name="Silver")
    Account.objects.filter(pk=accounts["voucher_holder"].pk).update(tier=silver)
    Transition.objects.filter(pk=transition.pk).update(status=Transition.Status.ANNOUNCED)
    transition.refresh_from_db()
    # accept: online by the member, at the desk by a clerk
    transitions.transition_accept(transition=transition, account=accounts["online"], channel="online")
    transitions.transition_accept(
        transition=transition, account=accounts["desk"], channel="desk", recorded_by=clerk_user, store=store
    )
    transitions.transition_accept(transition=transition, account=accounts["zero_accepted"], channel="online")
    transitions.transition_accept(transition=transition, account=accounts["voucher_holder"], channel="online")
    accounts["closed_member"].member.status = "closed"
    accounts["closed_member"].member.save()
    for account in accounts.values():
        account.refresh_from_db()
    return Scenario(program, new_program, transition, plan, accounts)


@pytest.fixture
def ann(scenario, member_user):
    """The signed-in member: an account in Blue with 400 points, not yet accepted."""
    member = MemberFactory(user=member_user, first_name="Ann", email=member_user.email)
    account = services.enrol(member=member, program=scenario.old)
    services.adjust(account=account, points=400, reason="Opening", created_by=None)
    return account


def move_to_cutover(transition: Transition) -> None:
    """The deadline has passed; today is the cut-over day."""
    today = timezone.localdate()
    Transition.objects.filter(pk=transition.pk).update(
        announce_on=today - datetime.timedelta(days=40),
        accept_by=today - datetime.timedelta(days=1),
        cutover_on=today,
    )
    transition.refresh_from_db()
