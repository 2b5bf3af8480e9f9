"""Writes of the campaigns app: a campaign's life (save, launch, pause, resume, end, cancel) and the
awards the engine cannot make on its own (period-end and win-back vouchers).

A launched campaign lives in the engine as earning rules that name it (their explanations say so),
limited to its treated members (the rule's audience), held away from its control group (the rule's
holdout), and drawing on one budget. Vouchers draw on the same budget at their value in points.
"""

import datetime
import math
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import CharField, DateTimeField, F, IntegerField, Q, Sum, Value
from django.db.models.functions import MD5, Cast, Concat, Substr
from django.db.models.lookups import LessThan
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _

from campaigns import segments
from campaigns.models import Campaign, CampaignMember, Message
from loyalty import engine
from loyalty.core.exceptions import ApplicationError
from loyalty.models import Account, ActivityType, EarnBudget, EarnRule, EarnRuleAudience, Program, Purchase
from loyalty.selectors import ranking_made_at
from members.models import Member
from rewards.models import Voucher
from rewards.services import voucher_issue

EDITABLE = (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED)
LIVE = (Campaign.Status.RUNNING, Campaign.Status.PAUSED)
# What staff may do to a campaign in each status; the services below refuse the rest.
ACTIONS = {
    Campaign.Status.DRAFT: frozenset({"edit", "launch", "cancel", "message"}),
    Campaign.Status.SCHEDULED: frozenset({"edit", "cancel", "message"}),
    Campaign.Status.RUNNING: frozenset({"pause", "end", "cancel", "message"}),
    Campaign.Status.PAUSED: frozenset({"resume", "end", "cancel", "message"}),
    Campaign.Status.ENDED: frozenset(),
    Campaign.Status.CANCELLED: frozenset(),
}


def campaign_actions(campaign: Campaign) -> frozenset[str]:
    """The actions the campaign's status allows (the staff page offers exactly these)."""
    return ACTIONS[campaign.status]


VOUCHER_BATCH = 500


def _validation_error(error: ValidationError) -> ApplicationError:
    fields = error.message_dict if hasattr(error, "error_dict") else {"__all__": error.messages}
    first = next(iter(fields.values()))[0]
    return ApplicationError(first, code="invalid", extra={"fields": fields})


def campaign_errors(campaign: Campaign) -> dict[str, str]:
    """What the campaign still needs beyond its fields' own checks (mostly its mechanic's settings), by field."""
    mechanic, errors = campaign.mechanic, {}
    if campaign.segment_id and campaign.program_id and campaign.segment.program_id != campaign.program_id:
        errors["segment"] = _("This segment belongs to another program.")
    M = Campaign.Mechanic
    if mechanic in (M.BONUS_POINTS, M.WELCOME) and not (campaign.bonus_multiple or campaign.bonus_points):
        errors["bonus_points"] = _("Give a fixed bonus or a multiple of the points earned.")
    if mechanic in (M.BONUS_POINTS, M.WELCOME) and campaign.bonus_multiple and campaign.bonus_points:
        errors["bonus_multiple"] = _("Give a fixed bonus or a multiple, not both.")
    if mechanic == M.BONUS_POINTS:
        unknown = set(campaign.activity_types) - set(ActivityType.values)
        if unknown:
            errors["activity_types"] = _("Unknown activities: %(codes)s.") % {"codes": ", ".join(sorted(unknown))}
    if mechanic == M.CATEGORY_BONUS:
        if not campaign.product_categories:
            errors["product_categories"] = _("Name at least one product category, e.g. PAINT.")
        if not campaign.category_rate:
            errors["category_rate"] = _("Give the extra points per currency unit spent in those categories.")
    if mechanic == M.WELCOME:
        if not campaign.welcome_days:
            errors["welcome_days"] = _("Say within how many days of enrolment the first purchase earns the bonus.")
        if campaign.segment_id:
            errors["segment"] = _(
                "A welcome series is for members who enrol during the campaign: leave the segment empty."
            )
    if mechanic == M.SPEND_THRESHOLD:
        if not campaign.threshold_amount:
            errors["threshold_amount"] = _("Give the amount members must spend in the period.")
        if not campaign.voucher_amount:
            errors["voucher_amount"] = _("Give the value of the voucher they earn.")
    if mechanic == M.WIN_BACK:
        if not campaign.inactive_days:
            errors["inactive_days"] = _("Say after how many days without activity a member counts as lapsed.")
        if campaign.award == Campaign.Award.VOUCHER and not campaign.voucher_amount:
            errors["voucher_amount"] = _("Give the value of the voucher they earn.")
        if campaign.award == Campaign.Award.POINTS and not campaign.bonus_points:
            errors["bonus_points"] = _("Give the bonus points a returning member earns.")
    return errors


@transaction.atomic
def campaign_save(*, program: Program, campaign: Campaign | None = None, created_by=None, **fields) -> Campaign:
    """Create a campaign, or change one that has not started yet."""
    if campaign is not None:
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status not in EDITABLE:
            raise ApplicationError(
                _("A campaign that has started cannot be changed; pause or end it instead."), code="not_editable"
            )
    else:
        campaign = Campaign(program=program, created_by=created_by)
    for name, value in fields.items():
        setattr(campaign, name, value)
    if campaign.segment_id and campaign.segment.program_id != program.pk:
        raise ApplicationError(
            _("This segment belongs to another program."), code="invalid", extra={"field": "segment"}
        )
    try:
        campaign.full_clean()
    except ValidationError as error:
        raise _validation_error(error) from None
    errors = campaign_errors(campaign)
    if errors:
        raise ApplicationError(next(iter(errors.values())), code="invalid", extra={"fields": errors})
    campaign.save()
    return campaign


# --- the launch checklist --------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    label: str
    ok: bool
    detail: str


def budget_points(campaign: Campaign) -> int | None:
    """The campaign's ceiling in points (a money budget at the program's point value)."""
    if campaign.budget_points is not None:
        return campaign.budget_points
    if campaign.budget_money is not None:
        return math.floor(campaign.budget_money / campaign.program.point_value)
    return None


def voucher_cost_points(campaign: Campaign) -> int:
    """What one of the campaign's vouchers takes from its budget: its value in points."""
    return math.ceil((campaign.voucher_amount or Decimal("0")) / campaign.program.point_value)


# The nightly ranking a segment's spend, points and decile criteria read must be this recent to launch.
RANKING_FRESH = datetime.timedelta(days=2)


def _ranking_check(campaign: Campaign) -> Check:
    ranked_at = ranking_made_at(program=campaign.program)
    if ranked_at is None:
        return Check(
            _("Ranking"),
            False,
            _(
                "The segment counts spend, points or value deciles, which the job “Rank members by value” computes "
                "every night; it has not run for this program yet. Run it from the jobs page."
            ),
        )
    when = date_format(timezone.localtime(ranked_at), "DATETIME_FORMAT")
    if ranked_at < timezone.now() - RANKING_FRESH:
        return Check(
            _("Ranking"),
            False,
            _(
                "The segment counts spend, points or value deciles as ranked on %(when)s, more than two days ago: "
                "check the job “Rank members by value” on the jobs page and run it again."
            )
            % {"when": when},
        )
    return Check(_("Ranking"), True, _("Spend, points and value deciles as ranked on %(when)s.") % {"when": when})


def launch_checklist(*, campaign: Campaign, today: datetime.date | None = None) -> list[Check]:
    """Everything that must hold before a campaign may start; all must be ok."""
    today = today or timezone.localdate()
    checks = []
    if campaign.mechanic == Campaign.Mechanic.WELCOME:
        checks.append(Check(_("Members"), True, _("Members who enrol during the campaign.")))
    else:
        size = segments.segment_count(program=campaign.program, segment=campaign.segment)
        held = round(size * campaign.holdout_percent / 100)
        checks.append(
            Check(
                _("Segment size"),
                size > 0,
                _("%(size)s members (about %(held)s held out as the control group).")
                % {"size": number_format(size, force_grouping=True), "held": number_format(held, force_grouping=True)}
                if size
                else _("No member matches the segment."),
            )
        )
    if campaign.segment is not None and segments.reads_the_ranking(campaign.segment):
        checks.append(_ranking_check(campaign))
    if campaign.mechanic == Campaign.Mechanic.ANNOUNCEMENT:
        checks.append(Check(_("Budget"), True, _("An announcement awards nothing.")))
    else:
        points = budget_points(campaign)
        checks.append(
            Check(
                _("Budget"),
                points is not None and points > 0,
                _("At most %(points)s points (%(currency)s %(money)s).")
                % {
                    "points": number_format(points, force_grouping=True),
                    "currency": campaign.program.currency,
                    "money": number_format(points * campaign.program.point_value, 2, force_grouping=True),
                }
                if points
                else _("Set a budget in points or money: the campaign stops awarding when it is spent."),
            )
        )
    messages = list(campaign.messages.all())
    needs_message = campaign.mechanic == Campaign.Mechanic.ANNOUNCEMENT
    unpreviewed = [message for message in messages if message.previewed_at is None]
    if not messages:
        checks.append(
            Check(
                _("Message"),
                not needs_message,
                _("An announcement needs a message.") if needs_message else _("No message: members are not told."),
            )
        )
    else:
        checks.append(
            Check(
                _("Message previewed"),
                not unpreviewed,
                _("Preview “%(name)s” for a member before launching.") % {"name": unpreviewed[0].name}
                if unpreviewed
                else _("Every message was previewed for a member."),
            )
        )
    dates_ok = campaign.starts_on <= campaign.ends_on and campaign.ends_on >= today
    checks.append(
        Check(
            _("Dates"),
            dates_ok,
            _("From %(start)s to %(end)s.") % {"start": campaign.starts_on, "end": campaign.ends_on}
            if dates_ok
            else _("The campaign would end in the past: move its end date."),
        )
    )
    return checks


# --- launching -------------------------------------------------------------------------------------


def _held_out_expression(campaign: Campaign, account_field: str = "pk"):
    """The engine's holdout (loyalty.engine.held_out) as SQL: the first four hex digits of
    md5("seed:id") below the threshold. The same on PostgreSQL and SQLite, so launch and earn agree."""
    digest = MD5(Concat(Value(f"{campaign.holdout_seed}:"), Cast(account_field, CharField())))
    return LessThan(Substr(digest, 1, 4), Value(engine.holdout_threshold(campaign.holdout_percent)))


def _insert_select(table: str, columns: list[str], queryset) -> int:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({', '.join(columns)}) {sql}", params)
        return cursor.rowcount


def _record_members(campaign: Campaign, accounts, now: datetime.datetime) -> int:
    """Add these accounts to the campaign in one statement, each in the group its hash gives it;
    accounts already recorded keep their group."""
    rows = (
        accounts.exclude(pk__in=CampaignMember.objects.filter(campaign=campaign).values("account_id"))
        .annotate(
            _campaign=Value(campaign.pk, output_field=IntegerField()),
            _held=_held_out_expression(campaign) if campaign.holdout_percent else Value(False),
            _at=Value(now, output_field=DateTimeField()),
        )
        .order_by()
        .values_list("_campaign", "pk", "_held", "_at")
    )
    added = _insert_select(CampaignMember._meta.db_table, ["campaign_id", "account_id", "held_out", "added_at"], rows)
    for rule in campaign.rules.filter(audience_only=True):
        _insert_select(
            EarnRuleAudience._meta.db_table,
            ["rule_id", "account_id"],
            CampaignMember.objects.filter(campaign=campaign, held_out=False)
            .exclude(account_id__in=EarnRuleAudience.objects.filter(rule=rule).values("account_id"))
            .annotate(_rule=Value(rule.pk, output_field=IntegerField()))
            .order_by()
            .values_list("_rule", "account_id"),
        )
    return added


def _targeted_accounts(campaign: Campaign, now: datetime.datetime):
    accounts = segments.segment_accounts(program=campaign.program, segment=campaign.segment, as_of=now)
    if campaign.mechanic == Campaign.Mechanic.WIN_BACK:
        lapsed = now - datetime.timedelta(days=campaign.inactive_days)
        accounts = accounts.filter(
            Q(last_activity_at__lt=lapsed) | Q(last_activity_at__isnull=True, enrolled_at__lt=lapsed)
        )
    return accounts


def _rule(campaign: Campaign, budget: EarnBudget, **fields) -> EarnRule:
    rule = EarnRule(
        program=campaign.program,
        name=campaign.name,
        valid_from=campaign.starts_on,
        valid_until=campaign.ends_on,
        holdout_seed=campaign.holdout_seed,
        holdout_percent=campaign.holdout_percent,
        budget=budget,
        audience_only=campaign.mechanic != Campaign.Mechanic.WELCOME,
        qualifying=False,  # campaign bonuses buy behaviour, not status
        stackable=True,
        **fields,
    )
    rule.full_clean()
    rule.save()
    return rule


def _bonus(campaign: Campaign, activity_type: str) -> dict:
    if campaign.bonus_multiple:
        return {
            "activity_type": activity_type,
            "calculation": EarnRule.Calculation.BONUS_MULTIPLE,
            "rate": campaign.bonus_multiple,
            "apply_tier_multiplier": False,
        }
    return {
        "activity_type": activity_type,
        "calculation": EarnRule.Calculation.FIXED,
        "rate": Decimal(campaign.bonus_points),
        "apply_tier_multiplier": False,
    }


def _create_rules(campaign: Campaign, budget: EarnBudget) -> list[EarnRule]:
    M = Campaign.Mechanic
    if campaign.mechanic == M.BONUS_POINTS:
        specs = [_bonus(campaign, activity) for activity in (campaign.activity_types or [ActivityType.PURCHASE])]
    elif campaign.mechanic == M.CATEGORY_BONUS:
        specs = [
            {
                "activity_type": ActivityType.PURCHASE,
                "calculation": EarnRule.Calculation.PER_CURRENCY_UNIT,
                "rate": campaign.category_rate,
                "product_categories": campaign.product_categories,
                "apply_tier_multiplier": True,
            }
        ]
    elif campaign.mechanic == M.WELCOME:
        specs = [
            {
                **_bonus(campaign, ActivityType.PURCHASE),
                "first_purchase_only": True,
                "enrolled_within_days": campaign.welcome_days,
            }
        ]
    elif campaign.mechanic == M.WIN_BACK and campaign.award == Campaign.Award.POINTS:
        # Once per member: the cap is the bonus itself.
        specs = [
            {
                **_bonus(campaign, ActivityType.PURCHASE),
                "cap_points": campaign.bonus_points,
                "cap_period": EarnRule.CapPeriod.EVER,
            }
        ]
    else:
        specs = []
    rules = [_rule(campaign, budget, **spec) for spec in specs]
    campaign.rules.set(rules)
    return rules


def _lock(campaign: Campaign) -> Campaign:
    return Campaign.objects.select_for_update(of=("self",)).select_related("program", "segment").get(pk=campaign.pk)


@transaction.atomic
def campaign_launch(*, campaign: Campaign, launched_by=None, now: datetime.datetime | None = None) -> Campaign:
    """Start a campaign whose checklist holds: it runs now if its start date has come, else it is
    scheduled and the campaigns job starts it on the day. Members and their groups are recorded at
    the start, set-based."""
    now = now or timezone.now()
    campaign = _lock(campaign)
    if campaign.status not in EDITABLE:
        raise ApplicationError(
            _("This campaign is %(status)s; only a draft or scheduled campaign can be launched.")
            % {"status": campaign.get_status_display().lower()},
            code="invalid_state",
        )
    today = timezone.localdate(now)
    failed = [check for check in launch_checklist(campaign=campaign, today=today) if not check.ok]
    if failed:
        raise ApplicationError(
            _("Not ready to launch: %(what)s")
            % {"what": " ".join(f"{check.label}: {check.detail}" for check in failed)},
            code="checklist",
        )
    if campaign.launched_by_id is None:
        campaign.launched_by = launched_by
    if campaign.starts_on > today:
        campaign.status = Campaign.Status.SCHEDULED
        campaign.save(update_fields=["status", "launched_by", "updated_at"])
        return campaign
    return _start(campaign, now)


def _start(campaign: Campaign, now: datetime.datetime) -> Campaign:
    points = budget_points(campaign)
    if campaign.mechanic != Campaign.Mechanic.ANNOUNCEMENT:
        campaign.budget = EarnBudget.objects.create(program=campaign.program, name=campaign.name[:120], points=points)
        _create_rules(campaign, campaign.budget)
    if campaign.mechanic != Campaign.Mechanic.WELCOME:
        _record_members(campaign, _targeted_accounts(campaign, now), now)
    campaign.status = Campaign.Status.RUNNING
    campaign.launched_at = now
    campaign.save(update_fields=["status", "launched_at", "launched_by", "budget", "updated_at"])
    _send_messages(campaign)
    return campaign


def _send_messages(campaign: Campaign) -> None:
    from campaigns import messaging  # the messages module builds on this one's models only

    for message in campaign.messages.filter(status=Message.Status.DRAFT, previewed_at__isnull=False):
        messaging.message_send_start(message=message, started_by=campaign.launched_by)


def _set_rules_active(campaign: Campaign, active: bool) -> None:
    campaign.rules.update(is_active=active)


def _switch(campaign: Campaign, *, expected: str, status: str, refusal: str) -> Campaign:
    """Pause or resume: the rules stop or start awarding with the status, in one transaction."""
    campaign = _lock(campaign)
    if campaign.status != expected:
        raise ApplicationError(refusal, code="invalid_state")
    _set_rules_active(campaign, status == Campaign.Status.RUNNING)
    campaign.status = status
    campaign.save(update_fields=["status", "updated_at"])
    return campaign


@transaction.atomic
def campaign_pause(*, campaign: Campaign, paused_by=None) -> Campaign:
    return _switch(
        campaign,
        expected=Campaign.Status.RUNNING,
        status=Campaign.Status.PAUSED,
        refusal=_("Only a running campaign can be paused."),
    )


@transaction.atomic
def campaign_resume(*, campaign: Campaign, resumed_by=None) -> Campaign:
    return _switch(
        campaign,
        expected=Campaign.Status.PAUSED,
        status=Campaign.Status.RUNNING,
        refusal=_("Only a paused campaign can be resumed."),
    )


@transaction.atomic
def campaign_end(*, campaign: Campaign, ended_by=None, now: datetime.datetime | None = None) -> Campaign:
    """Stop awarding now (or at the end date, from the job). Period-end vouchers are issued by the job."""
    now = now or timezone.now()
    campaign = _lock(campaign)
    if campaign.status not in LIVE:
        raise ApplicationError(_("Only a running or paused campaign can be ended."), code="invalid_state")
    _set_rules_active(campaign, False)
    campaign.status = Campaign.Status.ENDED
    campaign.ended_at = now
    campaign.save(update_fields=["status", "ended_at", "updated_at"])
    return campaign


@transaction.atomic
def campaign_cancel(*, campaign: Campaign, cancelled_by=None) -> Campaign:
    """Call a campaign off: nothing more is awarded, and no period-end voucher is issued."""
    campaign = _lock(campaign)
    if campaign.status in (Campaign.Status.ENDED, Campaign.Status.CANCELLED):
        raise ApplicationError(_("This campaign is already over."), code="invalid_state")
    _set_rules_active(campaign, False)
    campaign.status = Campaign.Status.CANCELLED
    campaign.ended_at = timezone.now()
    campaign.save(update_fields=["status", "ended_at", "updated_at"])
    return campaign


# --- the campaigns job -----------------------------------------------------------------------------


def _day_start(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def campaigns_tick(*, as_of: datetime.datetime | None = None) -> int:
    """The campaigns' clock, every few minutes: start scheduled campaigns whose day has come, record
    new members of welcome series, issue win-back vouchers, end campaigns past their last day and
    issue their period-end vouchers. Each step is idempotent; returns how many rows it changed."""
    as_of = as_of or timezone.now()
    today = timezone.localdate(as_of)
    changed = 0
    for campaign in Campaign.objects.filter(status=Campaign.Status.SCHEDULED, starts_on__lte=today):
        with transaction.atomic():
            locked = _lock(campaign)
            if locked.status == Campaign.Status.SCHEDULED:
                if locked.ends_on < today:
                    changed += 1
                    campaign_cancel(campaign=locked)
                    continue
                _start(locked, as_of)
                changed += 1
    for campaign in Campaign.objects.filter(status__in=LIVE, mechanic=Campaign.Mechanic.WELCOME):
        with transaction.atomic():
            changed += welcome_members_record(campaign=campaign, now=as_of)
    for campaign in Campaign.objects.filter(
        status__in=(*LIVE, Campaign.Status.ENDED), mechanic=Campaign.Mechanic.WIN_BACK, award=Campaign.Award.VOUCHER
    ).filter(Q(ended_at__isnull=True) | Q(vouchers_issued_at__isnull=True)):
        changed += win_back_vouchers_issue(campaign=campaign, as_of=as_of)
    for campaign in Campaign.objects.filter(status__in=LIVE, ends_on__lt=today):
        campaign_end(campaign=campaign, now=_day_start(campaign.ends_on + datetime.timedelta(days=1)))
        changed += 1
    for campaign in Campaign.objects.filter(
        status=Campaign.Status.ENDED, mechanic=Campaign.Mechanic.SPEND_THRESHOLD, vouchers_issued_at__isnull=True
    ):
        changed += threshold_vouchers_issue(campaign=campaign, as_of=as_of)
    return changed


def welcome_members_record(*, campaign: Campaign, now: datetime.datetime) -> int:
    """A welcome series targets members as they enrol: each new account joins a group (by the same
    hash the engine's holdout uses) so the campaign can be measured."""
    accounts = Account.objects.filter(
        program=campaign.program,
        member__status=Member.Status.ACTIVE,
        enrolled_at__gte=_day_start(campaign.starts_on),
        enrolled_at__lt=_day_start(campaign.ends_on + datetime.timedelta(days=1)),
    )
    return _record_members(campaign, accounts, now)


def _window(campaign: Campaign) -> tuple[datetime.datetime, datetime.datetime]:
    return _day_start(campaign.starts_on), _day_start(campaign.ends_on + datetime.timedelta(days=1))


def _vouchers(campaign: Campaign, accounts: list[int], *, kind: str, description: str, valid_from, valid_until) -> int:
    """Issue one voucher per account, at most what the budget has left; a voucher already issued
    (same key) is not issued again nor charged twice."""
    if not accounts:
        return 0
    issued = 0
    cost = voucher_cost_points(campaign)
    for start in range(0, len(accounts), VOUCHER_BATCH):
        batch = accounts[start : start + VOUCHER_BATCH]
        keys = {account_id: f"campaign:{campaign.pk}:{kind}:{account_id}" for account_id in batch}
        with transaction.atomic():
            # The budget's lock also serialises two runs of the job: whatever the other issued is
            # committed and seen here, so it is neither issued nor charged again.
            budget = EarnBudget.objects.select_for_update().get(pk=campaign.budget_id)
            taken = set(Voucher.objects.filter(issue_key__in=keys.values()).values_list("issue_key", flat=True))
            by_pk = Account.objects.in_bulk([account_id for account_id in batch if keys[account_id] not in taken])
            for account_id in batch:
                account = by_pk.get(account_id)
                if account is None:
                    continue
                if budget.left < cost:
                    break
                voucher_issue(
                    account=account,
                    description=description,
                    issue_key=keys[account_id],
                    valid_from=valid_from,
                    valid_until=valid_until,
                    amount=campaign.voucher_amount,
                    source=campaign,
                )
                budget.awarded += cost
                issued += 1
            EarnBudget.objects.filter(pk=budget.pk).update(awarded=budget.awarded)
    return issued


def _already_issued(campaign: Campaign, kind: str) -> set[int]:
    prefix = f"campaign:{campaign.pk}:{kind}:"
    return set(Voucher.objects.filter(issue_key__startswith=prefix).values_list("account_id", flat=True))


def _treated_purchases(campaign: Campaign, start: datetime.datetime, end: datetime.datetime):
    """Purchases of the campaign's treated members in [start, end)."""
    return Purchase.objects.filter(
        program=campaign.program,
        occurred_at__gte=start,
        occurred_at__lt=end,
        account__in=CampaignMember.objects.filter(campaign=campaign, held_out=False).values("account_id"),
    )


def threshold_vouchers_issue(*, campaign: Campaign, as_of: datetime.datetime | None = None) -> int:
    """Spend-threshold campaigns, once the period is over: treated members whose spend in the window
    (net of returns) reached the threshold get a voucher valid over the next period. Runs twice,
    issues once."""
    start, end = _window(campaign)
    period = campaign.ends_on - campaign.starts_on + datetime.timedelta(days=1)
    qualifying = (
        _treated_purchases(campaign, start, end)
        .values("account_id")
        .annotate(spent=Sum(F("amount") - F("returned_amount")))
        .filter(spent__gte=campaign.threshold_amount)
        .order_by("-spent", "account_id")
        .values_list("account_id", flat=True)
    )
    done = _already_issued(campaign, "threshold")
    accounts = [account_id for account_id in qualifying if account_id not in done]
    issued = _vouchers(
        campaign,
        accounts,
        kind="threshold",
        description=_("%(campaign)s: you spent %(currency)s %(amount)s or more")
        % {
            "campaign": campaign.name,
            "currency": campaign.program.currency,
            "amount": number_format(campaign.threshold_amount, 2),
        },
        valid_from=campaign.ends_on + datetime.timedelta(days=1),
        valid_until=campaign.ends_on + period,
    )
    Campaign.objects.filter(pk=campaign.pk).update(vouchers_issued_at=as_of or timezone.now())
    return issued


def win_back_vouchers_issue(*, campaign: Campaign, as_of: datetime.datetime | None = None) -> int:
    """Win-back campaigns with a voucher: treated members who bought again in the window get one, once."""
    as_of = as_of or timezone.now()
    start, end = _window(campaign)
    returned = (
        _treated_purchases(campaign, start, min(end, as_of))
        .values_list("account_id", flat=True)
        .distinct()
        .order_by("account_id")
    )
    done = _already_issued(campaign, "winback")
    accounts = [account_id for account_id in returned if account_id not in done]
    issued = _vouchers(
        campaign,
        accounts,
        kind="winback",
        description=_("%(campaign)s: welcome back") % {"campaign": campaign.name},
        valid_from=timezone.localdate(as_of),
        valid_until=timezone.localdate(as_of) + datetime.timedelta(days=campaign.voucher_valid_days),
    )
    if campaign.status == Campaign.Status.ENDED:
        Campaign.objects.filter(pk=campaign.pk).update(vouchers_issued_at=as_of)
    return issued
