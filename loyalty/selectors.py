"""Reads of the points engine. Each issues a fixed number of queries whatever the history length."""

import datetime
import functools
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.postgres.aggregates import ArrayAgg
from django.db import connection
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from loyalty import engine
from loyalty.core import rows
from loyalty.core.exceptions import ApplicationError
from loyalty.models import (
    EVIDENCE_ACTIVITY_TYPES,
    Account,
    AccountValue,
    Activity,
    EarnRule,
    LedgerEntry,
    Program,
    Purchase,
    RulesVersion,
    TermsAcceptance,
    Tier,
    TierBenefit,
)
from members import numbers
from members.models import Member, Store
from members.numbers import phone_prefix


def account_statement(
    *,
    account: Account,
    kinds: list[str] | None = None,
    date_from: datetime.date | None = None,
    date_to: datetime.date | None = None,
) -> QuerySet[LedgerEntry]:
    """The account's ledger, newest first, each line with its explanation; paginate it."""
    entries = account.entries.all()
    if kinds:
        entries = entries.filter(kind__in=kinds)
    if date_from:
        entries = entries.filter(occurred_at__date__gte=date_from)
    if date_to:
        entries = entries.filter(occurred_at__date__lte=date_to)
    return entries.select_related("store").order_by("-occurred_at", "-pk")


@dataclass(frozen=True)
class TierProgress:
    tier: Tier | None
    next_tier: Tier | None
    qualifying: int | Decimal
    missing: int | Decimal
    percent: int
    window_closes_at: datetime.datetime | None
    kept_tier: Tier | None
    """The tier the member will hold after the next review if nothing changes."""
    review_at: datetime.datetime | None
    basis: str


def qualifying_total(*, account: Account, start: datetime.datetime, end: datetime.datetime) -> int | Decimal:
    """Qualifying points (or spend net of returns) the account earned in [start, end). Every earn that can
    lift a tier reads it, so its SQL is written once rather than built by the ORM each time."""
    spend = account.program.qualifying_basis == Program.QualifyingBasis.SPEND
    moment = connection.ops.adapt_datetimefield_value  # SQLite compares datetimes as UTC text
    with connection.cursor() as cursor:
        cursor.execute(_qualifying_total_sql(spend), [account.pk, moment(start), moment(end)])
        (total,) = cursor.fetchone()
    # SQLite sums decimals as floats: back to the amount's cents.
    return Decimal(str(total)).quantize(Decimal("0.01")) if spend else int(total)


@functools.cache
def _qualifying_total_sql(spend: bool) -> str:
    quote = connection.ops.quote_name
    if spend:
        total, table = "SUM(amount) - SUM(returned_amount)", Purchase._meta.db_table
    else:
        total, table = "SUM(qualifying_points)", LedgerEntry._meta.db_table
    return (
        f"SELECT COALESCE({total}, 0) FROM {quote(table)}"
        " WHERE account_id = %s AND occurred_at >= %s AND occurred_at < %s"
    )


def tier_benefits(*, tier: Tier) -> list[TierBenefit]:
    """A tier's benefits in order, each with the reward it links to (one query)."""
    return list(tier.benefits.select_related("reward").order_by("position", "pk"))


def tier_progress(*, account: Account, as_of: datetime.datetime | None = None) -> TierProgress:
    """Where the member stands: next tier, what is missing, by when, and what they keep if nothing changes."""
    as_of = as_of or timezone.now()
    program = account.program
    tiers = sorted(program.tiers.all(), key=lambda tier: tier.rank)
    start, end = engine.qualification_window(program, as_of)
    qualifying = qualifying_total(account=account, start=start, end=end)
    current = next((tier for tier in tiers if tier.pk == account.tier_id), None)
    higher = [tier for tier in tiers if current is None or tier.rank > current.rank]
    next_tier = higher[0] if higher else None
    if next_tier:
        floor = current.threshold if current else 0
        missing = max(next_tier.threshold - qualifying, 0)
        span = next_tier.threshold - floor
        percent = int(min(max((qualifying - floor) / span * 100, 0), 100)) if span else 100
    else:
        missing, percent = 0, 100
    kept = current
    if current is not None and account.tier_review_at is not None:
        # As the review will judge it: what has been earned in the review window so far.
        so_far = qualifying_total(
            account=account, start=account.tier_window_start, end=min(as_of, account.tier_review_at) + engine.TICK
        )
        earned = engine.tier_for(tiers, so_far)
        if earned is None or earned.rank < current.rank:
            if program.downgrade_mode == Program.DowngradeMode.ONE_TIER:
                one_down = [tier for tier in tiers if tier.rank < current.rank][-1]
                kept = max([one_down, earned] if earned else [one_down], key=lambda tier: tier.rank)
            else:
                kept = earned
    window_closes = end if program.qualification_window == Program.Window.CALENDAR_YEAR else account.tier_review_at
    return TierProgress(
        tier=current,
        next_tier=next_tier,
        qualifying=qualifying,
        missing=missing,
        percent=percent,
        window_closes_at=window_closes,
        kept_tier=kept,
        review_at=account.tier_review_at,
        basis=program.qualifying_basis,
    )


def points_expiring_within(*, account: Account, days: int, as_of: datetime.datetime | None = None) -> list[dict]:
    """Available points that lapse in the next `days` days, grouped by date: [{"date", "points"}]."""
    as_of = as_of or timezone.now()
    return list(
        account.entries.filter(
            remaining__gt=0,
            is_available=True,
            expires_at__gt=as_of,
            expires_at__lte=as_of + datetime.timedelta(days=days),
        )
        .annotate(date=TruncDate("expires_at"))
        .values("date")
        .annotate(points=Sum("remaining"))
        .order_by("date")
    )


# What each process last read of a program's rules, under the program's RulesVersion: the earn paths read
# the version (joined to the account they lock) before the rules, so a version they see was set with the
# rules they would read or older ones. Never changed after it is stored (threads share it).
_RULE_SETS: dict[tuple[int, str], tuple[int, engine.RuleSet]] = {}
_TIER_LADDERS: dict[int, tuple[int, tuple[Tier, ...]]] = {}


def _versioned() -> bool:
    return connection.vendor == "postgresql"  # only PostgreSQL keeps the version (triggers of migration 0018)


def _rules_version(program: Program) -> int:
    """The program's rules version as read with it (a query here if it was not); no row is version 0."""
    kept = getattr(program, "rules_version", None)  # None for a program no rule or tier write touched yet
    return kept.version if kept is not None else 0


def _reused(cache: dict, key, program: Program, read):
    """What `read()` returns, kept by this process under the program's rules version: read again only
    when the version changed since."""
    version = _rules_version(program)
    kept = cache.get(key)
    if kept is not None and kept[0] == version:
        return kept[1]
    value = read()
    cache[key] = (version, value)
    return value


def earn_rule_set(*, program: Program, activity_type: str, reuse: bool = False) -> engine.RuleSet:
    """Every earn reads this, so on PostgreSQL it is one query: the rules with their tier and store ids
    aggregated into arrays (not two more queries of prefetched objects); none at all with `reuse` when this
    process read the rules already under the program's rules version. Pass `reuse` only with a program
    whose version was read in this transaction (an earn's: `select_related("program__rules_version")` on
    the account it locks)."""
    if reuse and _versioned():
        return _reused(
            _RULE_SETS,
            (program.pk, activity_type),
            program,
            lambda: earn_rule_set(program=program, activity_type=activity_type),
        )
    rules = EarnRule.objects.filter(program=program, activity_type=activity_type, is_active=True)
    if connection.vendor == "postgresql":
        rules = list(
            rules.annotate(
                tier_pks=ArrayAgg("tiers__id", distinct=True, filter=Q(tiers__isnull=False), default=Value([])),
                store_pks=ArrayAgg("stores__id", distinct=True, filter=Q(stores__isnull=False), default=Value([])),
            )
        )
    else:  # the SQLite fallback: the same ids from two prefetches
        rules = list(rules.prefetch_related("tiers", "stores"))
        for rule in rules:
            rule.tier_pks = [tier.pk for tier in rule.tiers.all()]
            rule.store_pks = [store.pk for store in rule.stores.all()]
    return engine.RuleSet(
        rules=rules,
        tier_ids={rule.pk: frozenset(rule.tier_pks) for rule in rules},
        store_ids={rule.pk: frozenset(rule.store_pks) for rule in rules},
    )


def program_tiers(*, program: Program, reuse: bool = False) -> tuple[Tier, ...]:
    """The program's tier ladder, lowest rank first; with `reuse` (as for earn_rule_set), the one this
    process read already under the program's rules version."""
    if reuse and _versioned():
        return _reused(_TIER_LADDERS, program.pk, program, lambda: program_tiers(program=program))
    return tuple(program.tiers.order_by("rank"))


def earned_in_cap_periods(
    *, account: Account, rule_set: engine.RuleSet, occurred_at: datetime.datetime
) -> dict[int, int]:
    """What each capped rule already awarded this account in the cap period of `occurred_at` (net of reversals)."""
    earned = {}
    for rule in rule_set.rules:
        if rule.cap_points is None:
            continue
        start, end = engine.cap_window(rule, occurred_at)
        # Earned by the rule, net of returns; expiries and refunds do not give cap room back.
        window = Q(rule=rule) | Q(kind=LedgerEntry.Kind.REVERSE, reverses__rule=rule)
        if start is not None:
            window &= Q(occurred_at__gte=start, occurred_at__lt=end)
        earned[rule.pk] = account.entries.filter(window).aggregate(total=Sum("points"))["total"] or 0
    return earned


@dataclass(frozen=True)
class EarnPreview:
    points: int
    awards: list[engine.Award]
    tier: Tier | None

    @property
    def explanations(self) -> list[str]:
        return [award.explanation for award in self.awards]


def preview_earn(
    *,
    program: Program,
    activity_type: str,
    occurred_at: datetime.datetime | None = None,
    account: Account | None = None,
    member: Member | None = None,
    tier: Tier | None = None,
    region: str = "",
    member_type: str = "",
    store: Store | None = None,
    amount: Decimal = Decimal("0"),
    lines: list[dict] | tuple = (),
    quantity: Decimal = Decimal("1"),
    code: str = "",
) -> EarnPreview:
    """What an activity would earn, written nowhere: for a real account (caps included) or a profile."""
    occurred_at = occurred_at or timezone.now()
    if account is not None:
        member, tier = account.member, account.tier
    if member is not None:
        region, member_type = member.region, member.member_type
    ctx = engine.EarnContext(
        program=program,
        activity_type=activity_type,
        occurred_at=occurred_at,
        tier=tier,
        region=region,
        member_type=member_type,
        store_id=store.pk if store else None,
        amount=Decimal(amount),
        lines=engine.parse_lines(lines),
        quantity=Decimal(quantity),
        code=code,
    )
    rule_set = earn_rule_set(program=program, activity_type=activity_type)
    caps = (
        earned_in_cap_periods(account=account, rule_set=rule_set, occurred_at=occurred_at)
        if account is not None
        else {}
    )
    awards = engine.compute_awards(ctx, rule_set, caps)
    return EarnPreview(points=sum(award.points for award in awards), awards=awards, tier=tier)


def active_rules(*, program: Program) -> QuerySet[EarnRule]:
    return program.earn_rules.filter(is_active=True).prefetch_related("tiers", "stores")


# --- ledger invariants ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Breach:
    invariant: str
    account_id: int | None
    detail: str

    def __str__(self) -> str:
        where = f"account {self.account_id}: " if self.account_id else ""
        return f"[{self.invariant}] {where}{self.detail}"


def ledger_breaches(*, program: Program | None = None, limit: int = 100) -> list[Breach]:
    """Every breach of the ledger invariants in DESIGN.md (empty when the books are sound)."""
    accounts = Account.objects.all()
    entries = LedgerEntry.objects.all()
    if program is not None:
        accounts, entries = accounts.filter(program=program), entries.filter(program=program)
    sums = accounts.annotate(
        available=Coalesce(Sum("entries__points", filter=Q(entries__is_available=True)), 0),
        not_available=Coalesce(Sum("entries__points", filter=Q(entries__is_available=False)), 0),
        live_lots=Coalesce(Sum("entries__remaining", filter=Q(entries__is_available=True, entries__points__gt=0)), 0),
    )
    breaches = []
    for account_id, balance, pending, available, not_available, live_lots in sums.filter(
        ~Q(balance=F("available")) | ~Q(pending=F("not_available")) | ~Q(balance=F("live_lots")) | Q(balance__lt=0)
    ).values_list("pk", "balance", "pending", "available", "not_available", "live_lots")[:limit]:
        if balance != available:
            breaches.append(Breach("balance = sum of available entries", account_id, f"{balance} != {available}"))
        if pending != not_available:
            breaches.append(Breach("pending = sum of pending entries", account_id, f"{pending} != {not_available}"))
        if balance != live_lots:
            breaches.append(
                Breach("balance = sum of remaining over live lots", account_id, f"{balance} != {live_lots}")
            )
        if balance < 0:
            breaches.append(Breach("balance >= 0", account_id, str(balance)))
    for program_id, key, count in (
        entries.filter(idempotency_key__isnull=False)
        .values("program_id", "idempotency_key")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .values_list("program_id", "idempotency_key", "n")[:limit]
    ):
        breaches.append(Breach("one entry per idempotency key", None, f"program {program_id} key {key!r}: {count}"))
    # Reversals, expiries and refunds name the entry they take back: it exists, in the same account.
    target_account = LedgerEntry.objects.filter(pk=OuterRef("reverses_id")).values("account_id")[:1]
    for entry_id, account_id, target in (
        entries.filter(reverses_id__isnull=False)
        .annotate(target=Subquery(target_account))
        .filter(Q(target__isnull=True) | ~Q(target=F("account_id")))
        .values_list("pk", "account_id", "target")[:limit]
    ):
        breaches.append(
            Breach("a reversal names an entry of its own account", account_id, f"entry {entry_id} -> {target}")
        )
    for entry_id, account_id, points, remaining in entries.filter(
        Q(remaining__lt=0) | Q(points__lt=0, remaining__gt=0) | Q(points__gt=0, remaining__gt=F("points"))
    ).values_list("pk", "account_id", "points", "remaining")[:limit]:
        breaches.append(Breach("0 <= remaining <= points", account_id, f"entry {entry_id}: {remaining} of {points}"))
    return breaches


# --- staff pages ------------------------------------------------------------------------------------


def program_summaries() -> QuerySet[Program]:
    """Programs with their member count, outstanding points and claims waiting (one query)."""

    return Program.objects.annotate(
        member_count=Count("accounts", distinct=True),
        outstanding=Coalesce(Sum("accounts__balance"), 0),
        claims_waiting=Count("activities", filter=Q(activities__status=Activity.Status.PENDING_REVIEW), distinct=True),
    ).order_by("name")


def program_outstanding(*, program: Program) -> dict:
    totals = program.accounts.aggregate(
        members=Count("pk"), balance=Coalesce(Sum("balance"), 0), pending=Coalesce(Sum("pending"), 0)
    )
    totals["liability"] = totals["balance"] * program.point_value
    return totals


def tier_ladder(*, program: Program) -> list[Tier]:
    """The program's tiers, lowest first, with their benefits and how many members hold each."""
    return list(program.tiers.annotate(member_count=Count("accounts")).prefetch_related("benefits").order_by("rank"))


def pending_claims(*, program: Program) -> QuerySet:

    return (
        Activity.objects.filter(program=program, status=Activity.Status.PENDING_REVIEW)
        .select_related("account__member", "store")
        .order_by("created_at")
    )


def account_by_member_no(*, program: Program, member_no: str) -> Account | None:
    return (
        Account.objects.select_related("member", "tier", "program")
        .filter(program=program, member__member_no=member_no.strip())
        .first()
    )


# --- the clerk desk and the member portal -------------------------------------------------------------


def store_programs(*, store: Store) -> QuerySet[Program]:
    """Programs a store runs and enrols into (live or pilot)."""
    return Program.objects.filter(stores=store, status__in=[Program.Status.LIVE, Program.Status.PILOT]).order_by("name")


def members_served_by(*, store: Store) -> QuerySet[Member]:
    """Members a store's clerks may see and serve: those with an account in a program the store runs."""
    return Member.objects.filter(Exists(Account.objects.filter(member=OuterRef("pk"), program__stores=store)))


def desk_member_search(*, store: Store, query: str, limit: int = 10) -> list[Member]:
    """As-you-type search at the desk: the beginning of a card number, a phone, an email, a last name or a
    company (each answered by an index, members/migrations/0007)."""
    query = query.strip()
    if len(query) < 3:
        return []
    members = members_served_by(store=store).exclude(status=Member.Status.ANONYMISED)
    compact = numbers.normalise(query)  # what a card or a phone looks like without spaces and dashes
    if "@" in query:
        match = Q(email__istartswith=query)
    elif compact.lstrip("+").isdigit():
        match = Q(member_no__startswith=compact)
        phone = phone_prefix(compact)
        if phone:
            match |= Q(phone__startswith=phone)
    else:
        # Letters: a name or company, or a legacy card number that has letters in it.
        match = Q(last_name__istartswith=query) | Q(company__istartswith=query)
        if any(char.isdigit() for char in compact):  # legacy numbers are kept as printed, dashes and all
            for typed in {compact, query.upper(), query}:
                match |= Q(member_no__startswith=typed)
    return list(members.filter(match).select_related("home_store").order_by("last_name", "first_name", "pk")[:limit])


def desk_member(*, store: Store, member_no: str) -> Member | None:
    """The member with this card number (as printed, or typed with other spacing) if the store serves them."""
    return (
        members_served_by(store=store)
        .exclude(status=Member.Status.ANONYMISED)
        .filter(member_no__in=numbers.typed_forms(member_no))
        .first()
    )


def locked(accounts: QuerySet[Account]) -> QuerySet[Account]:
    """The accounts locked for this transaction, as every money path takes them: read whole, with the
    member, the tier, the program and the program's rules version (an outer join, not locked), which the
    earn's rule and tier reads go by."""
    return accounts.select_for_update(of=("self",)).select_related("program__rules_version", "member", "tier")


def store_accounts_by_card(
    *, store: Store, member_no: str, program_slug: str = "", lock: bool = False
) -> list[Account]:
    """The accounts, in the programs this store runs (only `program_slug`'s when given), of the member with
    this card number (as printed or typed with other spacing), in one query: what a till's earn starts from.

    Unlocked, only their ids and program's slug and name are read (others load when used). `lock=True`
    (inside a money path's transaction) reads them as `locked` does: the till's lookup and the account's
    lock in one statement."""
    if lock:
        found = _store_accounts_locked(store=store, member_no=member_no, program_slug=program_slug)
        found.sort(key=lambda account: (account.member_id, account.program.name))
    else:
        accounts = Account.objects.filter(member__member_no__in=numbers.typed_forms(member_no), program__stores=store)
        if program_slug:
            accounts = accounts.filter(program__slug=program_slug)
        accounts = accounts.exclude(member__status=Member.Status.ANONYMISED)
        found = list(
            accounts.select_related("program")
            .only("member_id", "program__slug", "program__name")
            .order_by("member_id", "program__name")
        )
    return [account for account in found if account.member_id == found[0].member_id]


def _member_not_found(member_no: str) -> ApplicationError:
    return ApplicationError(
        _("No member %(member_no)s in this store's programs. Check the card number.") % {"member_no": member_no},
        code="member_not_found",
        extra={"field": "member"},
    )


@functools.cache
def _store_accounts_locked_sql(by_slug: bool) -> str:
    """What `locked(Account.objects.filter(<the till's card>, program__stores=store)).order_by("pk")` runs,
    written once: the ORM spent more CPU building that statement than anything else in a purchase."""
    quote = connection.ops.quote_name
    stores = Program._meta.get_field("stores")
    tables = {model: quote(model._meta.db_table) for model in (Account, Member, Program, Tier, RulesVersion)}
    lock = " FOR UPDATE OF a" if connection.features.has_select_for_update_of else ""
    return (
        f"SELECT {rows.select_list(Account, 'a')}, {rows.select_list(Program, 'p')},"
        f" {rows.select_list(Member, 'm')}, {rows.select_list(Tier, 't')}, {rows.select_list(RulesVersion, 'v')}"
        f" FROM {tables[Account]} a"
        f" JOIN {tables[Member]} m ON m.id = a.member_id"
        f" JOIN {tables[Program]} p ON p.id = a.program_id"
        f" JOIN {quote(stores.m2m_db_table())} s ON s.{quote(stores.m2m_column_name())} = a.program_id"
        f" AND s.{quote(stores.m2m_reverse_name())} = %s"
        f" LEFT JOIN {tables[Tier]} t ON t.id = a.tier_id"
        f" LEFT JOIN {tables[RulesVersion]} v ON v.program_id = a.program_id"
        f" WHERE m.member_no IN (%s, %s, %s) AND m.status <> %s{' AND p.slug = %s' if by_slug else ''}"
        f" ORDER BY a.id{lock}"
    )


def _store_accounts_locked(*, store: Store, member_no: str, program_slug: str) -> list[Account]:
    """The till's accounts, locked by id order and read as `locked` reads them (member, tier, program and
    its rules version), from one statement built once per process."""
    forms = sorted(numbers.typed_forms(member_no))
    params = [store.pk, *(forms + forms[:1] * (3 - len(forms))), Member.Status.ANONYMISED]
    if program_slug:
        params.append(program_slug)
    with connection.cursor() as cursor:
        cursor.execute(_store_accounts_locked_sql(bool(program_slug)), params)
        found = cursor.fetchall()
    accounts = []
    for row in found:
        account, program, member, tier, version = rows.load_joined(row, Account, Program, Member, Tier, RulesVersion)
        account.member = member
        if tier is not None:  # none: the lock waited for a tier change, read below
            account.tier = tier
        Program.rules_version.related.set_cached_value(program, version)  # None is cached too: no query
        account.program = program
        accounts.append(rows.joined_after_lock(account, "tier"))
    return accounts


def store_member(*, store: Store, member_no: str) -> Member:
    """The member a till names by card number, if the store serves them; else a member_not_found refusal."""
    member = desk_member(store=store, member_no=member_no or "")
    if member is None:
        raise _member_not_found(member_no)
    return member


def store_account(*, store: Store, member_no: str, program_slug: str = "", lock: bool = False) -> Account:
    """The account a till names: the member's by card number in the store's programs, the program named
    or the only one; else a refusal that says which field to fix. `lock=True`: read whole and locked, in
    the same statement (see store_accounts_by_card)."""
    accounts = store_accounts_by_card(store=store, member_no=member_no or "", program_slug=program_slug, lock=lock)
    if not accounts and program_slug and store_accounts_by_card(store=store, member_no=member_no or ""):
        raise ApplicationError(
            _("Member %(member_no)s is not in program “%(program)s” at this store.")
            % {"member_no": member_no, "program": program_slug},
            code="member_not_found",
            extra={"field": "program"},
        )
    if not accounts:
        raise _member_not_found(member_no)
    if len(accounts) > 1:
        raise ApplicationError(
            _("This store runs several programs: say which one in “program” (%(slugs)s).")
            % {"slugs": ", ".join(a.program.slug for a in accounts)},
            code="program_required",
            extra={"field": "program"},
        )
    return accounts[0]


def store_purchase(*, store: Store, pk: int) -> Purchase | None:
    """A purchase in one of the programs this store runs (a till may return what another store sold)."""
    return (
        Purchase.objects.filter(pk=pk, program__in=store_programs(store=store))
        .select_related("program", "account")
        .first()
    )


def desk_accounts(*, store: Store, member: Member) -> list[Account]:
    """The member's accounts in the programs this store runs."""
    return list(
        Account.objects.filter(member=member, program__stores=store)
        .select_related("program", "tier")
        .order_by("program__name")
    )


def member_accounts(*, member: Member) -> list[Account]:
    return list(Account.objects.filter(member=member).select_related("program", "tier").order_by("enrolled_at"))


def latest_entries(*, account: Account, limit: int = 5) -> list[LedgerEntry]:
    return list(account_statement(account=account)[:limit])


def member_claims(*, member: Member) -> QuerySet[Activity]:
    """The member's claims (activities that need evidence), newest first, with their review status."""
    return (
        # Types that always need evidence, and anything the member sent evidence for (e.g. an event).
        Activity.objects.filter(account__member=member)
        .filter(Q(activity_type__in=sorted(EVIDENCE_ACTIVITY_TYPES)) | ~Q(evidence=""))
        .select_related("account__program")
        .order_by("-created_at", "-pk")
    )


def member_referrals(*, member: Member) -> list[dict]:
    """People the member referred, with the points the member earned for each (three queries)."""
    referees = list(member.referrals.order_by("-enrolled_at", "-pk").prefetch_related("accounts"))
    keys = {
        f"~referral:{trigger}:referrer:{account.pk}": referee.pk
        for referee in referees
        for account in referee.accounts.all()
        for trigger in ("enrolment", "first_purchase")
    }
    points = dict.fromkeys((referee.pk for referee in referees), 0)
    earned = (
        LedgerEntry.objects.filter(account__member=member, activity__idempotency_key__in=list(keys))
        .values_list("activity__idempotency_key")
        .annotate(total=Sum("points"))
    )
    for key, total in earned:
        points[keys[key]] += total
    return [{"member": referee, "points": points[referee.pk]} for referee in referees]


def open_programs() -> QuerySet[Program]:
    """Programs a person can join online (invitation-only and pilot ones ask for a code)."""
    return Program.objects.filter(status__in=[Program.Status.LIVE, Program.Status.PILOT]).order_by("name")


def member_terms_history(*, member: Member) -> QuerySet[TermsAcceptance]:
    return (
        TermsAcceptance.objects.filter(account__member=member)
        .select_related("terms", "account__program", "store")
        .order_by("-accepted_at")
    )


def keyed_occurrence(*, program: Program, idempotency_key: str) -> datetime.datetime | None:
    """When a purchase or activity posted under this key happened, so a form sent twice (a double click,
    a reload) repeats the first post exactly and gets its result back."""
    for model in (Purchase, Activity):
        found = model.objects.filter(program=program, idempotency_key=idempotency_key).values_list(
            "occurred_at", flat=True
        )
        if found:
            return found[0]
    return None


def ranking_made_at(*, program: Program) -> datetime.datetime | None:
    """When the nightly ranking (`services.account_values_refresh`) last ranked the program's members and
    summed their spend and points (None: never). A refresh stamps every row it writes and deletes the
    rest, so any row tells; the decile index finds one."""
    return AccountValue.objects.filter(program=program).order_by("decile").values_list("computed_at", flat=True).first()
