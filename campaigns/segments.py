"""Segments: who a saved definition selects (one SQL query), how many, a sample, and how it reads;
the services that save and delete them.

`segment_accounts` is the contract campaigns build on: launching wraps its SQL in INSERT … SELECT, so
it must stay one query (subqueries are fine), never a Python loop over members.
"""

import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    Expression,
    F,
    ProtectedError,
    Q,
    QuerySet,
    Subquery,
)
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from campaigns.models import Segment
from loyalty.core.exceptions import ApplicationError
from loyalty.models import Account, AccountValue, Program, Tier
from loyalty.selectors import ranking_made_at
from members.models import Member, MemberType, Store


def _local_midnight(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def _chosen(segment: Segment, relation: str, column: str) -> Q:
    """`column` is one of the segment's chosen tiers or stores; none chosen means any.

    A draft (unsaved) segment carries its choices as ids; a saved one is read inside the same SQL, so
    counting a saved segment stays one query."""
    if segment.pk is None:
        ids = list(getattr(segment, f"draft_{relation}_ids", ()))
        return Q(**{f"{column}__in": ids}) if ids else Q()
    cached = getattr(segment, "_prefetched_objects_cache", {}).get(relation)
    if cached is not None:
        ids = [obj.pk for obj in cached]
        return Q(**{f"{column}__in": ids}) if ids else Q()
    through = getattr(Segment, relation).through
    target = "tier_id" if relation == "tiers" else "store_id"
    chosen = through.objects.filter(segment_id=segment.pk)
    return ~Exists(chosen) | Q(**{f"{column}__in": chosen.values(target)})


class _NoneOf(Expression):
    """`column` is none of the ids `among` selects, written NOT EXISTS over the set as a derived table:
    PostgreSQL plans that as one anti-join. NOT IN hashes the set only while it fits work_mem and then
    scans it once per row, EXCEPT reads every account a second time, and NOT EXISTS correlated inside a
    GROUP BY sums per account."""

    conditional = True
    output_field = BooleanField()

    def __init__(self, column: str, among: QuerySet):
        super().__init__()
        self.column, self.among = F(column), Subquery(among)

    def get_source_expressions(self):
        return [self.column, self.among]

    def set_source_expressions(self, expressions):
        self.column, self.among = expressions

    def as_sql(self, compiler, connection):
        among_sql, among_params = compiler.compile(self.among)
        column_sql, column_params = compiler.compile(self.column)
        sql = f"NOT EXISTS (SELECT 1 FROM {among_sql} among WHERE among.account_id = {column_sql})"
        return sql, (*among_params, *column_params)


def _period_total(*, program: Program, source: str, low, high, days: int) -> Q:
    """The account's spend (net of returns) or earned points over the `days` before the last nightly
    refresh lies in [low, high]; an account the refresh has not seen yet counts as 0.

    The sums are read from `AccountValue` (one column per period), which the planner has statistics
    on: a positive minimum keeps the accounts whose sum reaches it (a semi-join), a range that admits 0
    keeps every account except those summing above the maximum (an anti-join, `_NoneOf`)."""
    if (low is None or low <= 0) and high is None:
        return Q()
    total = f"{source}_{days}d"
    values = AccountValue.objects.filter(program=program)
    if low is not None and low > 0:
        bounds = {f"{total}__gte": low} if high is None else {f"{total}__range": (low, high)}
        return Q(pk__in=values.filter(**bounds).values("account_id"))
    return Q(_NoneOf("pk", values.filter(**{f"{total}__gt": high}).values("account_id")))


def _program_accounts(program: Program) -> QuerySet[Account]:
    return Account.objects.filter(program=program, member__status=Member.Status.ACTIVE)


def decile_accounts(*, program: Program, best: int, worst: int, as_of: datetime.datetime | None = None) -> QuerySet:
    """Ids of the accounts in value deciles best..worst, as ranked by the last nightly refresh
    (loyalty.services.account_values_refresh: spend net of returns over 12 months, most first, no
    spend at the bottom). Reading the ranking keeps a count fast at a million members; `as_of` is
    kept for the callers' symmetry and does not re-rank."""
    return AccountValue.objects.filter(program=program, decile__gte=best, decile__lte=worst).values("account_id")


def reads_the_ranking(segment: Segment) -> bool:
    """Whether the segment has criteria the nightly ranking computes (spend, points, value deciles)."""
    for source in ("spend", "points"):
        low, high = getattr(segment, f"{source}_min"), getattr(segment, f"{source}_max")
        if (low is not None and low > 0) or high is not None:
            return True
    return segment.decile_best is not None or segment.decile_worst is not None


def values_freshness(*, program: Program) -> str:
    """How fresh the spend, points and decile criteria are, in words for the segment editor."""
    as_of = ranking_made_at(program=program)
    if as_of is None:
        return _(
            "Spend, points and value deciles are computed every night; they have not been computed for this "
            "program yet. A program manager can run “Rank members by value” now from the jobs page."
        )
    return _("For the spend and points criteria, as computed on %(when)s (every night).") % {
        "when": date_format(timezone.localtime(as_of), "DATETIME_FORMAT")
    }


def segment_accounts(
    *, program: Program, segment: Segment | None = None, as_of: datetime.datetime | None = None
) -> QuerySet[Account]:
    """The accounts of the program's active members that meet every criterion the segment sets
    (segment=None: all of them). One SQL query; wrap it (INSERT … SELECT, COUNT) rather than iterate.

    `as_of` moves the activity windows; spend, points and value deciles are read as the last nightly
    refresh (`loyalty.services.account_values_refresh`) computed them (`ranking_made_at`)."""
    accounts = _program_accounts(program)
    if segment is None:
        return accounts
    as_of = as_of or timezone.now()
    conditions = [_chosen(segment, "tiers", "tier_id"), _chosen(segment, "stores", "member__home_store_id")]
    if segment.regions:
        conditions.append(Q(member__region__in=segment.regions))
    if segment.member_types:
        conditions.append(Q(member__member_type__in=segment.member_types))
    if segment.enrolled_from:
        conditions.append(Q(enrolled_at__gte=_local_midnight(segment.enrolled_from)))
    if segment.enrolled_until:
        conditions.append(Q(enrolled_at__lt=_local_midnight(segment.enrolled_until + datetime.timedelta(days=1))))
    if segment.active_within_days is not None:
        conditions.append(Q(last_activity_at__gt=as_of - datetime.timedelta(days=segment.active_within_days)))
    if segment.inactive_for_days is not None:
        cutoff = as_of - datetime.timedelta(days=segment.inactive_for_days)
        # Accounts brought over without any activity count from their enrolment.
        conditions.append(Q(last_activity_at__lte=cutoff) | Q(last_activity_at__isnull=True, enrolled_at__lte=cutoff))
    if segment.balance_min is not None:
        conditions.append(Q(balance__gte=segment.balance_min))
    if segment.balance_max is not None:
        conditions.append(Q(balance__lte=segment.balance_max))
    if segment.consent == Segment.Consent.GIVEN:
        conditions.append(Q(member__marketing_consent=True))
    elif segment.consent == Segment.Consent.NOT_GIVEN:
        conditions.append(Q(member__marketing_consent=False))
    for source in ("spend", "points"):
        low, high = getattr(segment, f"{source}_min"), getattr(segment, f"{source}_max")
        days = segment.period_days or 365
        conditions.append(_period_total(program=program, source=source, low=low, high=high, days=days))
    if segment.decile_best is not None or segment.decile_worst is not None:
        best, worst = segment.decile_best or 1, segment.decile_worst or 10
        conditions.append(Q(pk__in=decile_accounts(program=program, best=best, worst=worst, as_of=as_of)))
    for condition in conditions:
        accounts = accounts.filter(condition)
    return accounts


# --- reads -----------------------------------------------------------------------------------------


def segment_count(*, program: Program, segment: Segment | None = None, as_of: datetime.datetime | None = None) -> int:
    return segment_accounts(program=program, segment=segment, as_of=as_of).count()


def segment_sample(
    *, program: Program, segment: Segment | None = None, as_of: datetime.datetime | None = None, size: int = 10
) -> list[Account]:
    """A few matching accounts with their member and tier, to check a segment by eye."""
    accounts = segment_accounts(program=program, segment=segment, as_of=as_of)
    return list(accounts.select_related("member", "tier").order_by("pk")[:size])


def program_stores(*, program: Program) -> QuerySet[Store]:
    """Stores a segment may name: those running the program, or every store when it lists none."""
    stores = Store.objects.filter(programs=program)
    if not stores.exists():
        stores = Store.objects.all()
    return stores.order_by("name")


def known_regions() -> list[str]:
    return list(Store.objects.exclude(region="").order_by("region").values_list("region", flat=True).distinct())


def _either(names: list[str]) -> str:
    """ "A", "A or B", "A, B or C"."""
    if len(names) < 2:
        return "".join(names)
    return _("%(names)s or %(last)s") % {"names": ", ".join(names[:-1]), "last": names[-1]}


def _chosen_objects(segment: Segment, relation: str) -> list:
    if segment.pk is None:
        model = Tier if relation == "tiers" else Store
        ids = list(getattr(segment, f"draft_{relation}_ids", ()))
        return list(model.objects.filter(pk__in=ids)) if ids else []
    return list(getattr(segment, relation).all())


def _money(program: Program, amount: Decimal) -> str:
    return f"{program.currency} {number_format(amount, 2, force_grouping=True)}"


def _between(low: str | None, high: str | None, *, both: str, at_least: str, at_most: str) -> str:
    if low is not None and high is not None:
        return both % {"low": low, "high": high}
    if low is not None:
        return at_least % {"low": low}
    return at_most % {"high": high}


def segment_describe(segment: Segment, *, member_types: dict[str, str] | None = None) -> list[str]:
    """The segment's criteria as sentences people read ("Tier: Gold or Platinum"), in the active language.
    A page describing many segments passes `member_types` (member_type_names()) to read them once."""
    program = segment.program
    lines = []
    tiers = sorted(_chosen_objects(segment, "tiers"), key=lambda tier: tier.rank)
    if tiers:
        lines.append(_("Tier: %(tiers)s") % {"tiers": _either([tier.name for tier in tiers])})
    stores = sorted(_chosen_objects(segment, "stores"), key=lambda store: store.name)
    if stores:
        lines.append(_("Home store: %(stores)s") % {"stores": _either([store.name for store in stores])})
    if segment.regions:
        lines.append(_("Region: %(regions)s") % {"regions": _either(list(segment.regions))})
    if segment.member_types:
        names = member_types if member_types is not None else member_type_names()
        types = [names.get(code, code) for code in segment.member_types]
        lines.append(_("Member type: %(types)s") % {"types": _either(types)})
    if segment.enrolled_from or segment.enrolled_until:
        lines.append(
            _between(
                date_format(segment.enrolled_from) if segment.enrolled_from else None,
                date_format(segment.enrolled_until) if segment.enrolled_until else None,
                both=_("Enrolled between %(low)s and %(high)s"),
                at_least=_("Enrolled on or after %(low)s"),
                at_most=_("Enrolled on or before %(high)s"),
            )
        )
    if segment.active_within_days is not None:
        days = segment.active_within_days
        lines.append(ngettext("Active in the last day", "Active in the last %(days)s days", days) % {"days": days})
    if segment.inactive_for_days is not None:
        days = segment.inactive_for_days
        lines.append(
            ngettext("Inactive for at least a day", "Inactive for at least %(days)s days", days) % {"days": days}
        )
    days = segment.period_days or 365
    period = ngettext("in the last day", "in the last %(days)s days", days) % {"days": days}
    if segment.spend_min is not None or segment.spend_max is not None:
        spend = _between(
            _money(program, segment.spend_min) if segment.spend_min is not None else None,
            _money(program, segment.spend_max) if segment.spend_max is not None else None,
            both=_("Spent between %(low)s and %(high)s"),
            at_least=_("Spent at least %(low)s"),
            at_most=_("Spent at most %(high)s"),
        )
        lines.append(f"{spend} {period}")
    if segment.points_min is not None or segment.points_max is not None:
        points = _between(
            number_format(segment.points_min, force_grouping=True) if segment.points_min is not None else None,
            number_format(segment.points_max, force_grouping=True) if segment.points_max is not None else None,
            both=_("Earned between %(low)s and %(high)s points"),
            at_least=_("Earned at least %(low)s points"),
            at_most=_("Earned at most %(high)s points"),
        )
        lines.append(f"{points} {period}")
    if segment.balance_min is not None or segment.balance_max is not None:
        lines.append(
            _between(
                number_format(segment.balance_min, force_grouping=True) if segment.balance_min is not None else None,
                number_format(segment.balance_max, force_grouping=True) if segment.balance_max is not None else None,
                both=_("Balance between %(low)s and %(high)s points"),
                at_least=_("Balance at least %(low)s points"),
                at_most=_("Balance at most %(high)s points"),
            )
        )
    if segment.consent == Segment.Consent.GIVEN:
        lines.append(_("Gave marketing consent"))
    elif segment.consent == Segment.Consent.NOT_GIVEN:
        lines.append(_("Did not give marketing consent"))
    if segment.decile_best is not None or segment.decile_worst is not None:
        best, worst = segment.decile_best or 1, segment.decile_worst or 10
        if best == worst:
            decile = _("Value decile %(best)s") % {"best": best}
        else:
            decile = _("Value deciles %(best)s to %(worst)s") % {"best": best, "worst": worst}
        lines.append(_("%(deciles)s (1 is the tenth who spent most over 12 months)") % {"deciles": decile})
    return lines or [_("Every active member of the program")]


# --- writes ----------------------------------------------------------------------------------------

SEGMENT_FIELDS = (
    "name",
    "description",
    "tiers",
    "stores",
    "regions",
    "member_types",
    "enrolled_from",
    "enrolled_until",
    "active_within_days",
    "inactive_for_days",
    "period_days",
    "spend_min",
    "spend_max",
    "points_min",
    "points_max",
    "balance_min",
    "balance_max",
    "consent",
    "decile_best",
    "decile_worst",
)
_RANGES = (("spend_min", "spend_max"), ("points_min", "points_max"), ("balance_min", "balance_max"))


def segment_check(segment: Segment) -> None:
    """Criteria that contradict each other or make no sense (ValidationError naming the field to fix).
    A value that is not yet of its field's type (clean_fields reports it) is not read."""

    def value(name: str):
        found = getattr(segment, name)
        return found if isinstance(found, int | Decimal | datetime.date) and not isinstance(found, bool) else None

    errors = {}
    for low_name, high_name in _RANGES:
        low, high = value(low_name), value(high_name)
        for name, given in ((low_name, low), (high_name, high)):
            if given is not None and given < 0:
                errors[name] = _("Give 0 or more.")
        if low is not None and high is not None and low > high and high_name not in errors:
            errors[high_name] = _("The maximum is below the minimum: swap them or clear one.")
    for name in ("active_within_days", "inactive_for_days"):
        if value(name) == 0:
            errors[name] = _("Give at least 1 day, or leave it empty.")
    active, inactive = value("active_within_days"), value("inactive_for_days")
    if active and inactive and inactive >= active:
        errors["inactive_for_days"] = _(
            "No member can be active in the last %(active)s days and inactive for %(inactive)s: make the inactive "
            "days fewer than the active days (members who are lapsing), or clear one of them."
        ) % {"active": active, "inactive": inactive}
    best, worst = value("decile_best"), value("decile_worst")
    for name, given in (("decile_best", best), ("decile_worst", worst)):
        if given is not None and not 1 <= given <= 10:
            errors[name] = _("Deciles go from 1 (the tenth who spent most) to 10 (the tenth who spent least).")
    if best is not None and worst is not None and best > worst and "decile_worst" not in errors:
        errors["decile_worst"] = _(
            "Decile 1 is the best: give the better decile first, e.g. from %(worst)s to %(best)s."
        ) % {"best": best, "worst": worst}
    enrolled_from, enrolled_until = value("enrolled_from"), value("enrolled_until")
    if enrolled_from and enrolled_until and enrolled_until < enrolled_from:
        errors["enrolled_until"] = _("The end date comes before the start date.")
    if errors:
        raise ValidationError(errors)


def _validation_error(error: ValidationError) -> ApplicationError:
    """A refusal as one message, naming the first field at fault (add_application_error shows it there)."""
    fields = getattr(error, "message_dict", {"__all__": error.messages})
    field = next((name for name in fields if name != "__all__"), None)
    return ApplicationError(" ".join(error.messages), code="invalid", extra={"field": field, "fields": fields})


def _ids(values) -> list[int]:
    return sorted({getattr(value, "pk", value) for value in values or ()})


def _apply(segment: Segment, fields: dict) -> tuple[list[int] | None, list[int] | None]:
    unknown = set(fields) - set(SEGMENT_FIELDS)
    if unknown:
        raise TypeError(f"unknown segment fields: {sorted(unknown)}")
    tiers = _ids(fields.pop("tiers")) if "tiers" in fields else None
    stores = _ids(fields.pop("stores")) if "stores" in fields else None
    for name, value in fields.items():
        if name in ("regions", "member_types"):
            value = sorted({item.strip() for item in value or () if item and item.strip()})
        if name == "consent" and value is None:
            value = ""
        setattr(segment, name, value)
    return tiers, stores


def _clean(segment: Segment, *, exclude: tuple[str, ...] = ()) -> None:
    """Field types and ranges first, then the rules of segment_check (their clearer words win), then
    the model's own checks."""
    errors = {}
    try:
        segment.clean_fields(exclude=exclude)
    except ValidationError as error:
        errors = error.message_dict
    try:
        segment_check(segment)
    except ValidationError as error:
        errors.update(error.message_dict)
    try:
        if errors:
            raise ValidationError(errors)
        segment.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
    except ValidationError as error:
        raise _validation_error(error) from None


def segment_draft(*, program: Program, **fields) -> Segment:
    """An unsaved segment built from an editor's criteria, to count and sample before saving.
    Writes nothing; refuses contradictory criteria as segment_save does."""
    segment = Segment(program=program)
    tiers, stores = _apply(segment, dict(fields))
    segment.draft_tiers_ids = tiers or []
    segment.draft_stores_ids = stores or []
    _clean(segment, exclude=("name",))
    return segment


@transaction.atomic
def segment_save(*, program: Program, segment: Segment | None = None, created_by, **fields) -> Segment:
    """Create a segment (segment=None) or change one; tiers and stores must be the program's."""
    if segment is None:
        segment = Segment(program=program, created_by=created_by)
    elif segment.program_id != program.pk:
        raise ApplicationError(_("This segment belongs to another program."), code="invalid")
    tiers, stores = _apply(segment, dict(fields))
    if tiers and Tier.objects.filter(pk__in=tiers, program=program).count() != len(tiers):
        raise ApplicationError(_("Choose tiers of this program only."), code="invalid", extra={"field": "tiers"})
    if stores and program_stores(program=program).filter(pk__in=stores).count() != len(stores):
        raise ApplicationError(_("Choose stores that run this program."), code="invalid", extra={"field": "stores"})
    _clean(segment)
    name_taken = Segment.objects.filter(program=program, name=segment.name).exclude(pk=segment.pk).exists()
    if name_taken:
        raise ApplicationError(
            _("Another segment of this program is already called “%(name)s”: choose another name.")
            % {"name": segment.name},
            code="invalid",
            extra={"field": "name"},
        )
    try:
        segment.validate_constraints()
    except ValidationError as error:
        raise _validation_error(error) from None
    segment.save()
    if tiers is not None:
        segment.tiers.set(tiers)
    if stores is not None:
        segment.stores.set(stores)
    return segment


@transaction.atomic
def segment_delete(*, segment: Segment) -> None:
    """Delete a segment no campaign uses (a campaign keeps the segment it targeted)."""
    used_by = list(segment.campaigns.order_by("name").values_list("name", flat=True)[:5])
    if used_by:
        raise ApplicationError(
            ngettext(
                "The campaign %(campaigns)s targeted this segment, so it is kept with the campaign's record. "
                "Rename it if it should no longer be chosen.",
                "The campaigns %(campaigns)s targeted this segment, so it is kept with their records. "
                "Rename it if it should no longer be chosen.",
                len(used_by),
            )
            % {"campaigns": ", ".join(f"“{name}”" for name in used_by)},
            code="segment_in_use",
        )
    try:
        segment.delete()
    except ProtectedError:  # a campaign chose it since the check above
        raise ApplicationError(
            _("A campaign has just chosen this segment, so it is kept with the campaign's record."),
            code="segment_in_use",
        ) from None


def segment_list(*, program: Program) -> QuerySet[Segment]:
    """The program's segments with their tiers and stores (for segment_describe) and how many campaigns
    use each; a fixed number of queries however many segments."""
    return (
        Segment.objects.filter(program=program)
        .prefetch_related("tiers", "stores")
        .annotate(campaign_count=Count("campaigns"))
        .order_by("name")
    )


def member_type_names() -> dict[str, str]:
    return dict(MemberType.objects.values_list("code", "name"))
