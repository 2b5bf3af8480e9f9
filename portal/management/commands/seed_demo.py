"""A complete demo program, built through the same services the portal uses.

Idempotent (running it again changes nothing) and deterministic (same --seed, same demo).
Each feature extends it with its own part of the program.
"""

import datetime
import random
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from loyalty import services as engine
from loyalty.core.exceptions import ApplicationError
from loyalty.models import Account, ActivityType, EarnRule, Program, TermsVersion
from members import numbers
from members import services as member_services
from members.models import Member, StaffProfile, Store, User
from members.roles import Role
from rewards import services as reward_services
from rewards.models import Reward

DEMO_PASSWORD = "loyalty-demo"
DEMO_DOMAIN = "demo.example.com"

STORES = [
    # code, name, region, street, postal code, city
    ("BRU-01", "Brussels Central", "Brussels", "Rue Neuve 12", "1000", "Brussels"),
    ("ANT-01", "Antwerp Harbour", "Flanders", "Meir 80", "2000", "Antwerp"),
    ("GEN-01", "Ghent Korenmarkt", "Flanders", "Korenmarkt 5", "9000", "Ghent"),
    ("LIE-01", "Liège Guillemins", "Wallonia", "Place des Guillemins 2", "4000", "Liège"),
    ("LIL-01", "Lille Flandres", "Hauts-de-France", "Rue Faidherbe 40", "59000", "Lille"),
]
FIRST_NAMES = [
    "Emma",
    "Lucas",
    "Louise",
    "Noah",
    "Olivia",
    "Arthur",
    "Mila",
    "Jules",
    "Elena",
    "Victor",
    "Lotte",
    "Bram",
    "Chloé",
    "Hugo",
    "Fien",
    "Milan",
]
LAST_NAMES = [
    "Peeters",
    "Janssens",
    "Maes",
    "Dubois",
    "Lambert",
    "Claes",
    "Willems",
    "Dupont",
    "Martin",
    "Mertens",
    "Leroy",
    "De Smet",
    "Vermeulen",
    "Renard",
]
# Members who can sign in with the demo password; the others were enrolled at a counter and never went online.
MEMBERS_WITH_LOGIN = 4
# Yearly spend that puts the four sign-in members in Platinum, Gold, Silver and Bronze.
SIGN_IN_MEMBER_SPEND = [16_500, 6_200, 1_800, 350]
REGIONS_BY_STORE = {code: region for code, _name, region, *_rest in STORES}
TIERS = [  # rank, name, threshold, multiplier, colour, benefits
    (1, "Bronze", 0, "1", "#b07d4f", ["Points on every purchase"]),
    (2, "Silver", 1_000, "1.25", "#9ca3af", ["25% more points", "Free delivery"]),
    (3, "Gold", 5_000, "1.5", "#d4a017", ["50% more points", "Free delivery", "Priority support line"]),
    (
        4,
        "Platinum",
        15_000,
        "2",
        "#4b5563",
        ["Double points", "Free delivery", "Personal advisor", "Invitations to launches"],
    ),
]
RULES = [  # name, activity, calculation, rate, extra fields
    ("Base earning: 1 pt per EUR 1", ActivityType.PURCHASE, "per_currency_unit", "1", {}),
    (
        "Paint week: double points on paint",
        ActivityType.PURCHASE,
        "per_currency_unit",
        "1",
        {"product_categories": ["PAINT"]},
    ),
    (
        "Training: 50 pts per hour",
        ActivityType.TRAINING_HOURS,
        "per_quantity",
        "50",
        {"requires_approval": True, "apply_tier_multiplier": False},
    ),
    (
        "Certification: 300 pts",
        ActivityType.CERTIFICATION,
        "fixed",
        "300",
        {"requires_approval": True, "apply_tier_multiplier": False},
    ),
    (
        "Product review: 25 pts",
        ActivityType.REVIEW,
        "fixed",
        "25",
        {"requires_approval": True, "cap_points": 100, "cap_period": "month", "qualifying": False},
    ),
    ("Event attendance: 100 pts", ActivityType.EVENT_ATTENDANCE, "fixed", "100", {}),
    (
        "Store check-in: 5 pts a day",
        ActivityType.CHECK_IN,
        "fixed",
        "5",
        {"cap_points": 5, "cap_period": "day", "qualifying": False},
    ),
    ("Referral: 250 pts", ActivityType.REFERRAL, "fixed", "250", {}),
]
CATEGORIES = ["PAINT", "TOOLS", "GARDEN", "TIMBER", "PLUMBING"]
TRADES = ["contractor", "installer", "roofer"]
REWARDS = [  # name, kind, points, value, fulfilment, extra fields
    (
        "Coffee and croissant at the counter",
        "merchandise",
        60,
        None,
        "voucher",
        {"featured": True, "voucher_valid_days": 30},
    ),
    ("EUR 5 voucher", "voucher_amount", 500, "5", "voucher", {"featured": True}),
    ("EUR 10 voucher", "voucher_amount", 950, "10", "voucher", {}),
    ("10% off paint", "voucher_percent", 400, "10", "voucher", {"limit_per_member": 1, "limit_period": "month"}),
    ("Donate EUR 5 to Habitat for Humanity", "donation", 500, "5", "manual", {}),
    ("Two-year extended warranty on power tools", "warranty", 800, None, "manual", {}),
    ("EUR 20 cashback on your account", "cashback", 2000, "20", "manual", {}),
    ("Roofing safety workshop (one seat)", "workshop", 1500, None, "voucher", {"stock": 12, "member_types": TRADES}),
    (
        "Your logo in our trade catalogue",
        "marketing_credit",
        3000,
        "250",
        "manual",
        {"member_types": TRADES, "tier": "Silver"},
    ),
    ("Pro cordless drill set", "merchandise", 4500, None, "manual", {"stock": 5, "tier": "Gold"}),
    ("VIP launch evening for two", "experience", 2500, None, "voucher", {"stock": 20, "tier": "Platinum"}),
]


class Command(BaseCommand):
    help = "Create (or complete) the demo program and print the demo logins."

    def add_arguments(self, parser):
        parser.add_argument("--members", type=int, default=40, help="How many demo members (default 40).")
        parser.add_argument("--seed", type=int, default=2026, help="Random seed: the same seed gives the same demo.")

    @transaction.atomic
    def handle(self, *args, members: int, seed: int, **options):
        stores = self._stores()
        logins = self._staff(stores)
        program = self._program(stores)
        rewards = self._rewards(program)
        logins += self._members(seed, members, program, stores)
        self._redemptions(program, rewards, stores)
        # What the nightly ranking would have done by now: segments read spend, points and deciles from it.
        engine.account_values_refresh(program=program)
        self._campaigns(seed, program, stores)
        self._print_logins(logins)

    def _program(self, stores: list[Store]) -> Program:
        program = Program.objects.filter(slug="blue-rewards").first()
        if program is None:
            program = Program.objects.create(
                name="Blue Rewards",
                slug="blue-rewards",
                points_name="points",
                currency="EUR",
                point_value=Decimal("0.01"),
                expiry_policy=Program.ExpiryPolicy.MONTHS_AFTER_EARN,
                expiry_months=24,
                pending_days=14,
                welcome_bonus=100,
                downgrade_grace_months=1,
                status=Program.Status.LIVE,
            )
            program.stores.set(stores)
            TermsVersion.objects.create(
                program=program,
                version="2026.1",
                text="Points are earned on purchases and activities as the program's rules say, and expire "
                "24 months after they were earned.",
                effective_on=datetime.date(2025, 1, 1),
            )
            engine.tier_ladder_save(
                program=program,
                tiers=[
                    engine.TierSpec(rank, name, threshold, Decimal(multiplier), colour, tuple(benefits))
                    for rank, name, threshold, multiplier, colour, benefits in TIERS
                ],
            )
            for name, activity, calculation, rate, extra in RULES:
                rule = EarnRule(
                    program=program,
                    name=name,
                    activity_type=activity,
                    calculation=calculation,
                    rate=Decimal(rate),
                    **extra,
                )
                rule.full_clean()
                rule.save()
        return program

    def _stores(self) -> list[Store]:
        stores = []
        for code, name, region, street, postal_code, city in STORES:
            store = Store.objects.filter(code=code).first() or member_services.store_create(
                code=code, name=name, region=region, street=street, postal_code=postal_code, city=city
            )
            stores.append(store)
        return stores

    def _staff(self, stores: list[Store]) -> list[tuple[str, str, str]]:
        people = [
            (Role.PROGRAM_MANAGER, f"manager@{DEMO_DOMAIN}", "Marie", "Lemaire", None),
            (Role.ANALYST, f"analyst@{DEMO_DOMAIN}", "Pieter", "Goossens", None),
        ] + [
            (Role.STORE_CLERK, f"clerk.{store.code.lower()}@{DEMO_DOMAIN}", "Clerk", store.name, store)
            for store in stores
        ]
        logins = []
        for role, email, first_name, last_name, store in people:
            if not User.objects.filter(email=email).exists():
                member_services.staff_user_create(
                    email=email,
                    password=DEMO_PASSWORD,
                    role=role,
                    first_name=first_name,
                    last_name=last_name,
                    store=store,
                )
            logins.append((str(role.label), email, store.name if store else ""))
        return logins

    def _members(self, seed: int, count: int, program: Program, stores: list[Store]) -> list[tuple[str, str, str]]:
        logins = []
        now = timezone.now()
        clerk_of = {profile.store_id: profile.user for profile in StaffProfile.objects.filter(store__in=stores)}
        for number in range(1, count + 1):
            # One random stream per member: the same seed gives the same member whatever already exists.
            rng = random.Random(f"{seed}-{number}")
            first_name, last_name = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            store = rng.choice(stores)
            email = f"member{number:02d}@{DEMO_DOMAIN}"
            has_login = number <= MEMBERS_WITH_LOGIN
            enrolled_at = now - datetime.timedelta(days=rng.randint(300, 360) - number)  # referrers join first
            language = rng.choice(["en", "fr", "nl"])
            member_type = rng.choice(["consumer", "consumer", "contractor", "installer", "roofer"])
            yearly = SIGN_IN_MEMBER_SPEND[number - 1] if has_login else rng.choice([150, 400, 900, 1_600, 3_000, 7_500])
            account = Account.objects.filter(member__email=email, program=program).select_related("member").first()
            user = None
            if has_login and (account is None or account.member.user_id is None):
                user = User.objects.filter(email=email).first() or member_services.member_user_create(
                    email=email, password=DEMO_PASSWORD, first_name=first_name, last_name=last_name, email_verified=True
                )
                if account is not None:
                    member_services.member_link_user(member=account.member, user=user)
            if account is None:  # enrolled once, at a counter, with its history
                referrer = Member.objects.filter(email=f"member{number - 1:02d}@{DEMO_DOMAIN}").first()
                account = engine.member_enrol(
                    program=program,
                    channel=Member.Channel.COUNTER,
                    accept_terms=True,
                    enrolled_by=clerk_of.get(store.pk),
                    store=store,
                    # Every fifth member came with the previous member's referral code.
                    referral_code=referrer.referral_code if referrer and number % 5 == 0 else "",
                    user=user,
                    at=enrolled_at,
                    member_no=numbers.with_check_digit(f"8000{number:05d}"),
                    first_name=first_name,
                    last_name=last_name,
                    email=email,
                    phone=f"+32470{number:06d}",
                    postal_code=store.postal_code,
                    city=store.city,
                    home_store=store,
                    region=REGIONS_BY_STORE[store.code],
                    language=language,
                    member_type=member_type,
                    marketing_consent=rng.random() < 0.6,
                )
                self._history(rng, account, account.member, store, yearly, enrolled_at, clerk_of.get(store.pk))
            if has_login:
                account.refresh_from_db()
                member = account.member
                note = f"{member.first_name} {member.last_name}, {account.tier.name}, card {member.member_no}"
                logins.append((str(_("Member")), email, note))
        return logins

    def _history(self, rng, account, member, store, yearly_spend, since, clerk) -> None:
        """Purchases over the months since enrolment (keys make a re-run replay instead of posting twice)."""
        visits = max(3, yearly_spend // 400)
        days = (timezone.now() - since).days
        for visit in range(visits):
            amount = Decimal(yearly_spend) / visits * Decimal(rng.uniform(0.6, 1.4))
            amount = amount.quantize(Decimal("0.01"))
            category = rng.choice(CATEGORIES)
            engine.earn_for_purchase(
                account=account,
                amount=amount,
                currency="EUR",
                store=store,
                created_by=clerk,
                receipt_number=f"{store.code}-{member.member_no}-{visit}",
                idempotency_key=f"demo-{member.member_no}-{visit}",
                occurred_at=since
                + datetime.timedelta(days=(visit + 1) * days // (visits + 1), hours=rng.randint(9, 18)),
                lines=[{"category": category, "amount": str((amount * Decimal("0.6")).quantize(Decimal("0.01")))}],
            )
        if rng.random() < 0.3:
            engine.earn_for_activity(
                account=account,
                activity_type=ActivityType.TRAINING_HOURS,
                quantity=rng.choice([2, 4, 8]),
                occurred_at=timezone.now() - datetime.timedelta(days=rng.randint(1, 20)),
                description="Roofing safety workshop",
                idempotency_key=f"demo-{member.member_no}-training",
                store=store,
            )

    def _rewards(self, program: Program) -> dict[str, Reward]:
        rewards = {}
        for name, kind, points, value, fulfilment, extra in REWARDS:
            extra = dict(extra)
            tier = extra.pop("tier", None)
            reward = Reward.objects.filter(program=program, name=name).first() or reward_services.reward_save(
                program=program,
                name=name,
                kind=kind,
                points_cost=points,
                value=Decimal(value) if value else None,
                fulfilment=fulfilment,
                min_tier=program.tiers.get(name=tier) if tier else None,
                description=_("A demo reward of the %(kind)s kind.") % {"kind": Reward.Kind(kind).label},
                **extra,
            )
            rewards[name] = reward
        return rewards

    def _redemptions(self, program: Program, rewards: dict[str, Reward], stores: list[Store]) -> None:
        """Some members already spent points: online, and at the desk (keys make a re-run replay)."""
        clerk_of = {profile.store_id: profile.user for profile in StaffProfile.objects.filter(store__in=stores)}
        plan = [
            (1, "EUR 5 voucher"),
            (1, "Coffee and croissant at the counter"),
            (2, "Donate EUR 5 to Habitat for Humanity"),
        ]
        plan += [(number, "EUR 5 voucher") for number in range(7, 41, 7)]
        for number, name in plan:
            account = (
                Account.objects.filter(program=program, member__email=f"member{number:02d}@{DEMO_DOMAIN}")
                .select_related("member", "member__home_store")
                .first()
            )
            if account is None:
                continue
            at_desk = number > MEMBERS_WITH_LOGIN
            store = account.member.home_store if at_desk else None
            try:
                reward_services.redeem(
                    account=account,
                    reward=rewards[name],
                    idempotency_key=f"demo-redeem-{number}-{name}",
                    channel="desk" if at_desk else "online",
                    store=store,
                    created_by=clerk_of.get(store.pk) if store else account.member.user,
                )
            except ApplicationError:
                continue  # not enough points in this demo: nothing was written

    def _campaigns(self, seed: int, program: Program, stores: list[Store]) -> None:
        """A segment, a running double-points campaign with a control group and some purchases in its
        window (so its performance page has something to show), and a welcome series still in draft."""
        from campaigns import messaging, segments
        from campaigns import services as campaign_services
        from campaigns.models import Campaign, Segment

        now = timezone.now()
        today = timezone.localdate(now)
        segment = Segment.objects.filter(program=program, name="Regular buyers").first() or segments.segment_save(
            program=program,
            name="Regular buyers",
            description="Members who spent at least EUR 300 over the last year.",
            created_by=None,
            spend_min=Decimal("300"),
            period_days=365,
        )
        if not Campaign.objects.filter(program=program, name="Double points fortnight").exists():
            campaign = campaign_services.campaign_save(
                program=program,
                name="Double points fortnight",
                goal="One more visit per regular buyer before the end of the year.",
                segment=segment,
                starts_on=today - datetime.timedelta(days=10),
                ends_on=today + datetime.timedelta(days=4),
                mechanic=Campaign.Mechanic.BONUS_POINTS,
                bonus_multiple=Decimal("1"),
                budget_points=200_000,
                holdout_percent=Decimal("20"),
            )
            message = messaging.message_save(
                program=program,
                campaign=campaign,
                kind="marketing",
                name="Double points are on",
                texts={
                    "en": (
                        "{first_name}, double points until the 14th",
                        "You have {balance} points. Every purchase earns double for two weeks.",
                    ),
                    "fr": (
                        "{first_name}, points doublés pendant deux semaines",
                        "Vous avez {balance} points. Chaque achat rapporte le double pendant deux semaines.",
                    ),
                    "nl": (
                        "{first_name}, dubbele punten tot de 14e",
                        "U heeft {balance} punten. Elke aankoop levert twee weken lang dubbel op.",
                    ),
                },
            )
            first = segments.segment_accounts(program=program, segment=segment).first()
            if first is not None:
                messaging.message_preview(message=message, account=first)
            campaign_services.campaign_launch(campaign=campaign, now=now - datetime.timedelta(days=10))
            # Purchases in the window: treated members come back a little more often. (Members who sign
            # in keep the history that puts one in each tier.)
            held = dict(
                campaign.members.filter(account__member__user__isnull=True).values_list("account_id", "held_out")
            )
            clerk_of = {profile.store_id: profile.user for profile in StaffProfile.objects.filter(store__in=stores)}
            for account in Account.objects.filter(pk__in=held).select_related("member", "member__home_store"):
                rng = random.Random(f"{seed}-campaign-{account.member.member_no}")
                store = account.member.home_store
                visits = rng.choice([0, 1, 1, 2, 2] if held[account.pk] else [1, 1, 2, 2, 3])
                for visit in range(visits):
                    engine.earn_for_purchase(
                        account=account,
                        amount=Decimal(rng.uniform(40, 160)).quantize(Decimal("0.01")),
                        currency="EUR",
                        store=store,
                        created_by=clerk_of.get(store.pk) if store else None,
                        receipt_number=f"{store.code if store else 'web'}-{account.member.member_no}-c{visit}",
                        idempotency_key=f"demo-{account.member.member_no}-campaign-{visit}",
                        occurred_at=now - datetime.timedelta(days=rng.randint(1, 9), hours=rng.randint(1, 8)),
                    )
        if not Campaign.objects.filter(program=program, name="Welcome bonus").exists():
            campaign_services.campaign_save(
                program=program,
                name="Welcome bonus",
                goal="A first purchase within two weeks of joining.",
                starts_on=today + datetime.timedelta(days=7),
                ends_on=today + datetime.timedelta(days=97),
                mechanic=Campaign.Mechanic.WELCOME,
                bonus_points=250,
                welcome_days=14,
                budget_points=50_000,
                holdout_percent=Decimal("10"),
            )

    def _print_logins(self, logins: list[tuple[str, str, str]]) -> None:
        out = self.stdout
        out.write(self.style.SUCCESS(f"Demo ready. Every demo login uses the password: {DEMO_PASSWORD}"))
        for role, email, note in logins:
            out.write(f"  {role:<16} {email:<34} {note}")
        out.write("Program staff set up two-factor authentication (any TOTP app) on their first visit to /staff/.")
