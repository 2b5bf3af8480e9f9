"""A complete demo program, built through the same services the portal uses.

Idempotent (running it again changes nothing) and deterministic (same --seed, same demo).
Each feature extends it with its own part of the program.
"""

import random

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils.translation import gettext as _

from members import services as member_services
from members.models import Store, User
from members.roles import Role

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


class Command(BaseCommand):
    help = "Create (or complete) the demo program and print the demo logins."

    def add_arguments(self, parser):
        parser.add_argument("--members", type=int, default=40, help="How many demo members (default 40).")
        parser.add_argument("--seed", type=int, default=2026, help="Random seed: the same seed gives the same demo.")

    @transaction.atomic
    def handle(self, *args, members: int, seed: int, **options):
        rng = random.Random(seed)
        stores = self._stores()
        logins = self._staff(stores)
        logins += self._members(rng, members)
        self._print_logins(logins)

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

    def _members(self, rng: random.Random, count: int) -> list[tuple[str, str, str]]:
        logins = []
        for number in range(1, count + 1):
            first_name, last_name = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = f"member{number:02d}@{DEMO_DOMAIN}"
            has_login = number <= MEMBERS_WITH_LOGIN
            if not User.objects.filter(email=email).exists():
                member_services.member_user_create(
                    email=email,
                    password=DEMO_PASSWORD if has_login else None,
                    first_name=first_name,
                    last_name=last_name,
                    email_verified=True,
                )
            if has_login:
                logins.append((str(_("Member")), email, f"{first_name} {last_name}"))
        return logins

    def _print_logins(self, logins: list[tuple[str, str, str]]) -> None:
        out = self.stdout
        out.write(self.style.SUCCESS(f"Demo ready. Every demo login uses the password: {DEMO_PASSWORD}"))
        for role, email, note in logins:
            out.write(f"  {role:<16} {email:<34} {note}")
        out.write("Program staff set up two-factor authentication (any TOTP app) on their first visit to /staff/.")
