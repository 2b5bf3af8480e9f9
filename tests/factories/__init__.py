"""factory-boy factories, one per model. Users created here have a verified primary email, as allauth expects."""

import datetime
from decimal import Decimal

import factory
from allauth.account.models import EmailAddress
from django.utils import timezone
from factory.django import DjangoModelFactory

from loyalty.models import (
    Account,
    Activity,
    ActivityType,
    EarnRule,
    LedgerAllocation,
    LedgerEntry,
    Program,
    Purchase,
    PurchaseReturn,
    TermsVersion,
    Tier,
    TierBenefit,
    TierChange,
)
from members.models import Member, StaffProfile, Store, User


class StoreFactory(DjangoModelFactory):
    class Meta:
        model = Store
        django_get_or_create = ["code"]

    code = factory.Sequence(lambda n: f"st-{n:03d}")
    name = factory.Sequence(lambda n: f"Store {n}")
    region = "Brussels"
    city = "Brussels"
    postal_code = "1000"
    street = factory.Sequence(lambda n: f"Rue Neuve {n}")


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password("correct-Horse-9")

    @factory.post_generation
    def email_verified(obj, create, extracted, **kwargs):
        if create:
            EmailAddress.objects.create(user=obj, email=obj.email, primary=True, verified=extracted is not False)


class StaffProfileFactory(DjangoModelFactory):
    class Meta:
        model = StaffProfile

    user = factory.SubFactory(UserFactory)
    store = factory.SubFactory(StoreFactory)


class MemberFactory(DjangoModelFactory):
    class Meta:
        model = Member

    member_no = factory.Sequence(lambda n: f"9{n:08d}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.Sequence(lambda n: f"member{n}@example.com")
    region = "Brussels"
    member_type = "consumer"
    language = "en"


class ProgramFactory(DjangoModelFactory):
    class Meta:
        model = Program
        django_get_or_create = ["slug"]

    name = factory.Sequence(lambda n: f"Program {n}")
    slug = factory.Sequence(lambda n: f"program-{n}")
    status = Program.Status.LIVE
    currency = "EUR"


class TierFactory(DjangoModelFactory):
    class Meta:
        model = Tier

    program = factory.SubFactory(ProgramFactory)
    rank = factory.Sequence(lambda n: n + 1)
    name = factory.Sequence(lambda n: f"Tier {n}")
    threshold = 0


class TierBenefitFactory(DjangoModelFactory):
    class Meta:
        model = TierBenefit

    tier = factory.SubFactory(TierFactory)
    text = "Free delivery"


class TermsVersionFactory(DjangoModelFactory):
    class Meta:
        model = TermsVersion

    program = factory.SubFactory(ProgramFactory)
    version = factory.Sequence(lambda n: f"v{n}")
    text = "Terms of the program."
    effective_on = factory.LazyFunction(lambda: datetime.date(2026, 1, 1))


class EarnRuleFactory(DjangoModelFactory):
    class Meta:
        model = EarnRule
        skip_postgeneration_save = True

    program = factory.SubFactory(ProgramFactory)
    name = "1 pt per EUR"
    activity_type = ActivityType.PURCHASE
    calculation = EarnRule.Calculation.PER_CURRENCY_UNIT
    rate = Decimal("1")

    @factory.post_generation
    def tiers(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.tiers.set(extracted)

    @factory.post_generation
    def stores(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.stores.set(extracted)


class AccountFactory(DjangoModelFactory):
    """A bare account row; tests of behaviour open accounts with loyalty.services.enrol instead."""

    class Meta:
        model = Account

    member = factory.SubFactory(MemberFactory)
    program = factory.SubFactory(ProgramFactory)
    enrolled_at = factory.LazyFunction(timezone.now)


class PurchaseFactory(DjangoModelFactory):
    class Meta:
        model = Purchase

    account = factory.SubFactory(AccountFactory)
    program = factory.SelfAttribute("account.program")
    receipt_number = factory.Sequence(lambda n: f"R{n:06d}")
    amount = Decimal("10.00")
    currency = "EUR"
    occurred_at = factory.LazyFunction(timezone.now)
    idempotency_key = factory.Sequence(lambda n: f"purchase-{n}")
    fingerprint = "factory"


class PurchaseReturnFactory(DjangoModelFactory):
    class Meta:
        model = PurchaseReturn

    purchase = factory.SubFactory(PurchaseFactory)
    amount = Decimal("1.00")
    idempotency_key = factory.Sequence(lambda n: f"return-{n}")
    fingerprint = "factory"


class ActivityFactory(DjangoModelFactory):
    class Meta:
        model = Activity

    account = factory.SubFactory(AccountFactory)
    program = factory.SelfAttribute("account.program")
    activity_type = ActivityType.EVENT_ATTENDANCE
    occurred_at = factory.LazyFunction(timezone.now)
    status = Activity.Status.APPROVED
    idempotency_key = factory.Sequence(lambda n: f"activity-{n}")
    fingerprint = "factory"


class LedgerEntryFactory(DjangoModelFactory):
    """A raw ledger row, for tests of check_ledger itself; everything else posts through the services."""

    class Meta:
        model = LedgerEntry

    account = factory.SubFactory(AccountFactory)
    program = factory.SelfAttribute("account.program")
    kind = LedgerEntry.Kind.EARN
    points = 10
    remaining = factory.SelfAttribute("points")
    available_at = factory.LazyFunction(timezone.now)
    occurred_at = factory.LazyFunction(timezone.now)
    reason = "10 pts: test"


class LedgerAllocationFactory(DjangoModelFactory):
    class Meta:
        model = LedgerAllocation

    lot = factory.SubFactory(LedgerEntryFactory)
    debit = factory.SubFactory(
        LedgerEntryFactory, account=factory.SelfAttribute("..lot.account"), kind="redeem", points=-1, remaining=0
    )
    points = 1


class TierChangeFactory(DjangoModelFactory):
    class Meta:
        model = TierChange

    account = factory.SubFactory(AccountFactory)
    to_tier = factory.SubFactory(TierFactory, program=factory.SelfAttribute("..account.program"))
    reason = TierChange.Reason.UPGRADE
    changed_at = factory.LazyFunction(timezone.now)


class RewardFactory(DjangoModelFactory):
    """A catalogue row (a EUR 5 voucher for 100 points by default); tests of reward_save's checks call the service."""

    class Meta:
        model = "rewards.Reward"

    program = factory.SubFactory(ProgramFactory)
    name = factory.Sequence(lambda n: f"Reward {n}")
    kind = "voucher_amount"
    points_cost = 100
    value = Decimal("5.00")
    fulfilment = "voucher"
