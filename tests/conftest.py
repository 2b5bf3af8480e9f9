"""Fixtures shared by the whole suite.

Real services only: PostgreSQL, Redis and Chromium. Locally a missing service skips the tests
that need it, with the reason; under CI=true it fails them (see _require).
"""

import os
import re
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import translation

from members import services as member_services
from members.roles import Role
from tests.factories import StoreFactory

CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
SCREENSHOT_DIR = Path(__file__).parent / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PASSWORD = "correct-Horse-9"


def _require(available: bool, reason: str) -> None:
    if available:
        return
    if CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_report_header(config):
    database = settings.DATABASES["default"]
    redis = settings.REDIS_URL if settings.REDIS_AVAILABLE else "not reachable (in-memory cache)"
    return [f"database: {database['ENGINE'].rsplit('.', 1)[-1]} {database['TEST']['NAME']}", f"redis: {redis}"]


def pytest_sessionstart(session):
    # Under CI the suite must run on the real services, not quietly on a fallback.
    if CI and "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        raise pytest.UsageError("CI=true but DATABASE_URL does not point at PostgreSQL")
    if CI and not settings.REDIS_AVAILABLE:
        raise pytest.UsageError(f"CI=true but Redis is not reachable at TEST_REDIS_URL={settings.REDIS_URL!r}")


@pytest.fixture(autouse=True)
def _postgres_marker(request):
    if request.node.get_closest_marker("postgres"):
        _require(connection.vendor == "postgresql", "PostgreSQL is not reachable (set DATABASE_URL)")


@pytest.fixture(autouse=True)
def _default_language():
    """A request in French leaves French active in this thread; every test starts in English."""
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


def _clear_test_cache() -> None:
    """Delete this checkout's test keys only: Redis' FLUSHDB would also empty other people's data."""
    if settings.REDIS_AVAILABLE:
        client = cache._cache.get_client(write=True)
        for key in client.scan_iter(match=f"{settings.CACHE_KEY_PREFIX}:*", count=1000):
            client.delete(key)
    else:
        cache.clear()


@pytest.fixture(autouse=True)
def _clear_cache():
    """Rate-limit counters and cached reads must not leak from one test into the next."""
    _clear_test_cache()
    yield
    _clear_test_cache()


# --- people ---------------------------------------------------------------------------------


@pytest.fixture
def store(db):
    return StoreFactory()


@pytest.fixture
def member_user(db):
    return member_services.member_user_create(
        email="ann.member@example.com", password=PASSWORD, first_name="Ann", email_verified=True
    )


@pytest.fixture
def clerk_user(store):
    return member_services.staff_user_create(
        email="carl.clerk@example.com", password=PASSWORD, role=Role.STORE_CLERK, first_name="Carl", store=store
    )


def _with_totp(user):
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    TOTP.activate(user, generate_totp_secret())
    return user


@pytest.fixture
def manager_without_mfa(db):
    return member_services.staff_user_create(
        email="mia.manager@example.com", password=PASSWORD, role=Role.PROGRAM_MANAGER, first_name="Mia"
    )


@pytest.fixture
def manager_user(manager_without_mfa):
    return _with_totp(manager_without_mfa)


@pytest.fixture
def analyst_user(db):
    user = member_services.staff_user_create(
        email="andy.analyst@example.com", password=PASSWORD, role=Role.ANALYST, first_name="Andy"
    )
    return _with_totp(user)


# --- browser ----------------------------------------------------------------------------------


def _chromium_path() -> str | None:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    return path if os.path.exists(path) else None


@pytest.fixture(scope="session")
def browser():
    executable = _chromium_path()
    _require(executable is not None, "Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make are still sequential.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(request, browser, live_server):
    """A fresh browser context on the live server; a full-page screenshot is saved when the test ends."""
    viewport = getattr(request, "param", None) or {"width": 1280, "height": 800}
    context = browser.new_context(base_url=live_server.url, viewport=viewport, locale="en-GB")
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    save_screenshot(page, request.node.name, "end")
    context.close()


def save_screenshot(page, test_name: str, step: str) -> Path:
    SCREENSHOT_DIR.mkdir(exist_ok=True)
    path = SCREENSHOT_DIR / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', test_name)}--{step}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def screenshot(request, page):
    """screenshot("step") saves tests/screenshots/<test>--<step>.png (git-ignored) and returns its path."""
    return lambda step: save_screenshot(page, request.node.name, step)


# --- ledger -----------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item, nextitem):
    """After every test that used the database, and before its data is rolled back or flushed,
    every ledger invariant must hold (DESIGN.md). `ledger_broken_on_purpose` opts a test out."""
    uses_db = item.get_closest_marker("django_db") or {"db", "transactional_db"} & set(item.fixturenames)
    if uses_db and not item.get_closest_marker("ledger_broken_on_purpose"):
        from loyalty.selectors import ledger_breaches

        breaches = ledger_breaches()
        assert not breaches, "ledger invariants broken:\n" + "\n".join(map(str, breaches))
    return (yield)


# --- the points engine ------------------------------------------------------------------------


TIER_LADDER = [  # rank, name, threshold, multiplier
    (1, "Bronze", 0, "1"),
    (2, "Silver", 1000, "1.25"),
    (3, "Gold", 5000, "1.5"),
    (4, "Platinum", 15000, "2"),
]


@pytest.fixture
def program(db):
    """A live program: Bronze/Silver/Gold/Platinum on qualifying points, 1 pt per EUR 1 on purchases."""
    from decimal import Decimal

    from tests.factories import EarnRuleFactory, ProgramFactory, TierFactory

    program = ProgramFactory(name="Blue Rewards", slug="blue")
    for rank, name, threshold, multiplier in TIER_LADDER:
        TierFactory(program=program, rank=rank, name=name, threshold=threshold, earn_multiplier=Decimal(multiplier))
    EarnRuleFactory(program=program, name="Base earning")
    return program


def tier(program, name):
    return program.tiers.get(name=name)


@pytest.fixture
def enrol():
    """enrol(program, **member fields) -> Account, through the real service."""
    from loyalty import services
    from tests.factories import MemberFactory

    def _enrol(program, **member_fields):
        return services.enrol(member=MemberFactory(**member_fields), program=program)

    return _enrol


@pytest.fixture
def buy():
    """buy(account, amount, **kwargs) -> EarnResult: a purchase through earn_for_purchase with fresh keys."""
    import itertools

    from django.utils import timezone

    from loyalty import services

    counter = itertools.count(1)

    def _buy(account, amount, **kwargs):
        n = next(counter)
        kwargs.setdefault("occurred_at", timezone.now())
        kwargs.setdefault("receipt_number", f"T{account.pk}-{n}")
        kwargs.setdefault("idempotency_key", f"buy-{account.pk}-{n}")
        kwargs.setdefault("currency", "EUR")
        return services.earn_for_purchase(account=account, amount=amount, **kwargs)

    return _buy


@pytest.fixture
def run_job(django_capture_on_commit_callbacks):
    """run_job(name, **job_run_start kwargs) -> the finished JobRun with its progress, worked in-process
    (tasks are eager here); tests/jobs/test_worker.py runs jobs through real workers."""
    from loyalty.core import jobs

    def _run(name, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            run, _created = jobs.job_run_start(job=name, **kwargs)
        return jobs.runs_with_progress().get(pk=run.pk)

    return _run


@pytest.fixture
def sign_in(page, live_server):
    """sign_in(user): put a real Django session for `user` into the browser (skips the sign-in form)."""
    from django.conf import settings as django_settings
    from django.test import Client

    def _sign_in(user):
        client = Client()
        client.force_login(user)
        cookie = client.cookies[django_settings.SESSION_COOKIE_NAME]
        page.context.add_cookies(
            [{"name": cookie.key, "value": cookie.value, "url": live_server.url, "httpOnly": True}]
        )

    return _sign_in
