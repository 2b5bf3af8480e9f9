"""The migration of a program transition: a dry run, then one idempotent, resumable job."""

from decimal import Decimal

import pytest

from campaigns import transitions
from campaigns.models import MigrationOutcome, Transition
from loyalty import services
from loyalty.core import jobs
from loyalty.core.exceptions import ApplicationError
from loyalty.core.models import JobRun
from loyalty.models import Account, LedgerEntry
from loyalty.selectors import ledger_breaches
from rewards.models import Voucher
from tests.transitions.conftest import move_to_cutover

# role: (state, points out, pending released, points in, new tier, voucher value)
EXPECTED = {
    "online": ("migrated", 1234, 0, 822, "Member", None),
    "desk": ("migrated", 700, 200, 466, "Member", None),
    "never": ("converted", 800, 0, 0, None, Decimal("8.80")),
    "no_email": ("converted", 300, 0, 0, None, Decimal("3.30")),
    "zero_accepted": ("migrated", 0, 0, 0, "Member", None),
    "zero_never": ("closed", 0, 0, 0, None, None),
    "pending_never": ("converted", 150, 50, 0, None, Decimal("1.65")),
    "voucher_holder": ("migrated", 1000, 0, 666, "Plus", None),
    "closed_member": ("closed", 250, 0, 0, None, None),
}


def _outcomes(scenario) -> dict:
    by_account = {o.account_id: o for o in MigrationOutcome.objects.filter(transition=scenario.transition)}
    return {
        role: (
            o.state,
            o.points_out,
            o.pending_released,
            o.points_in,
            o.to_tier.name if o.to_tier else None,
            o.voucher_amount,
        )
        for role, account in scenario.accounts.items()
        if (o := by_account.get(account.pk))
    }


def _books(scenario) -> tuple:
    """Everything the migration may write, to compare two moments."""
    return (
        LedgerEntry.objects.count(),
        Voucher.objects.count(),
        MigrationOutcome.objects.count(),
        sorted(Account.objects.values_list("pk", "balance", "pending", "tier_id")),
    )


def _start(scenario, django_capture_on_commit_callbacks, user=None):
    with django_capture_on_commit_callbacks(execute=True):
        run = transitions.transition_migration_start(transition=scenario.transition, started_by=user)
    return JobRun.objects.get(pk=run.pk)


def test_the_dry_run_shows_every_members_outcome_and_the_totals_and_writes_nothing(scenario):
    move_to_cutover(scenario.transition)
    before = _books(scenario)

    dry = transitions.transition_dry_run(transition=scenario.transition, limit=None)

    assert _books(scenario) == before
    by_account = {row["account"].pk: row["decision"] for row in dry.rows}
    for role, (state, out, pending, points_in, tier, voucher) in EXPECTED.items():
        decision = by_account[scenario.accounts[role].pk]
        assert (decision.state, decision.points_out, decision.pending, decision.points_in) == (
            state,
            out,
            pending,
            points_in,
        ), role
        assert (decision.to_tier.name if decision.to_tier else None) == tier, role
        assert decision.voucher_amount == voucher, role
    totals = dry.totals
    assert totals["accounts"] == 9
    assert totals["states"] == {"migrated": 4, "converted": 3, "closed": 2}
    assert totals["points_out"] == sum(row[1] for row in EXPECTED.values())
    assert totals["pending_released"] == 250
    assert totals["points_in"] == 822 + 466 + 666
    assert totals["vouchers"] == 3
    assert totals["voucher_value"] == Decimal("13.75")
    assert totals["liability_before"] == Decimal("44.34")  # 4,434 points at EUR 0.01
    assert totals["liability_after"] == Decimal("39.08") + Decimal("13.75")  # 1,954 new points at EUR 0.02
    assert totals["vouchers_outstanding"] == 1


def test_the_job_gives_every_member_exactly_one_outcome_and_conserves_points(
    scenario, django_capture_on_commit_callbacks, manager_user
):
    move_to_cutover(scenario.transition)
    points_before = {role: a.balance + a.pending for role, a in scenario.accounts.items()}

    run = _start(scenario, django_capture_on_commit_callbacks, manager_user)

    assert run.status == JobRun.Status.SUCCEEDED
    scenario.reload()
    assert scenario.transition.status == Transition.Status.COMPLETED
    assert _outcomes(scenario) == EXPECTED
    assert MigrationOutcome.objects.filter(transition=scenario.transition).count() == 9
    for role, account in scenario.accounts.items():
        # the old account is emptied by exactly what left it, in one migrate entry
        assert (account.balance, account.pending) == (0, 0), role
        out = LedgerEntry.objects.filter(account=account, kind=LedgerEntry.Kind.MIGRATE)
        assert sum(out.values_list("points", flat=True)) == -points_before[role], role
        state, _out, _pending, points_in, tier, voucher = EXPECTED[role]
        new = Account.objects.filter(member=account.member, program=scenario.new).first()
        if state == "migrated":
            assert (new.balance, new.tier.name) == (points_in, tier), role
            if points_in:
                entry = new.entries.get(kind=LedgerEntry.Kind.MIGRATE)
                assert entry.points == points_in and entry.remaining == points_in
        else:
            assert new is None, role
        if voucher:
            issued = Voucher.objects.get(issue_key=f"~transition:{scenario.transition.pk}:{account.pk}")
            assert (issued.amount, issued.account_id, issued.status) == (voucher, account.pk, "active")
    # the voucher bought before the transition stays usable
    assert Voucher.objects.filter(account=scenario.accounts["voucher_holder"], status="active").count() == 1
    # the French member's statement speaks French
    entry = LedgerEntry.objects.get(account=scenario.accounts["online"], kind=LedgerEntry.Kind.MIGRATE)
    assert "Green Club" in entry.reason and "pts" in entry.reason
    assert not ledger_breaches(program=scenario.old)
    assert not ledger_breaches(program=scenario.new)


def test_a_second_run_changes_nothing(scenario, django_capture_on_commit_callbacks, run_job):
    move_to_cutover(scenario.transition)
    _start(scenario, django_capture_on_commit_callbacks)
    after_first = _books(scenario)

    again = _start(scenario, django_capture_on_commit_callbacks)  # the page's button pressed again
    rerun = run_job(transitions.MIGRATION_JOB)  # a scheduled run
    chunk = transitions.transition_migrate_chunk(
        transition=scenario.transition, low=0, high=10**12, as_of=again.as_of
    )  # the chunk itself, forced

    assert _books(scenario) == after_first
    assert rerun.chunks_total == 0
    assert chunk == (0, 0)
    assert _outcomes(scenario) == EXPECTED


def test_a_crash_halfway_then_a_retry_ends_in_the_same_state(
    scenario, django_capture_on_commit_callbacks, monkeypatch, settings
):
    move_to_cutover(scenario.transition)
    settings.JOB_CHUNK_SIZE = 3
    real_issue = transitions.voucher_issue
    calls = {"n": 0}

    def crash_on_second_voucher(**kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker lost")
        return real_issue(**kwargs)

    monkeypatch.setattr(transitions, "voucher_issue", crash_on_second_voucher)
    with pytest.raises(RuntimeError):
        _start(scenario, django_capture_on_commit_callbacks)
    scenario.reload()
    run = scenario.transition.job_run
    run.refresh_from_db()
    assert run.status == JobRun.Status.FAILED
    halfway = _outcomes(scenario)
    assert 0 < len(halfway) < len(EXPECTED)
    assert halfway == {role: EXPECTED[role] for role in halfway}  # done chunks are whole
    assert not ledger_breaches()

    monkeypatch.setattr(transitions, "voucher_issue", real_issue)
    with django_capture_on_commit_callbacks(execute=True):
        jobs.job_run_retry(run=run)

    run.refresh_from_db()
    assert run.status == JobRun.Status.SUCCEEDED
    assert _outcomes(scenario) == EXPECTED
    assert Voucher.objects.filter(issue_key__startswith=f"~transition:{scenario.transition.pk}:").count() == 3
    # out and in for the three migrated balances, out for the three vouchers and the closed member's points
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.MIGRATE).count() == 2 * 3 + 3 + 1
    scenario.reload()
    assert scenario.transition.status == Transition.Status.COMPLETED


def test_migrating_before_the_cut_over_is_refused(scenario):
    with pytest.raises(ApplicationError) as refusal:
        transitions.transition_migration_start(transition=scenario.transition)
    assert refusal.value.code == "before_cutover"
    assert not MigrationOutcome.objects.exists()


def test_migrate_points_replays_a_key_and_refuses_it_for_other_content(scenario):
    account = scenario.accounts["online"]
    first = services.migrate_points(
        from_account=account,
        points_out=1234,
        reason_out="out",
        idempotency_key="k1",
        to_program=scenario.new,
        points_in=10,
        reason_in="in",
    )
    again = services.migrate_points(
        from_account=account,
        points_out=1234,
        reason_out="out",
        idempotency_key="k1",
        to_program=scenario.new,
        points_in=10,
        reason_in="in",
    )
    assert (again.out_entry.pk, again.in_entry.pk) == (first.out_entry.pk, first.in_entry.pk)
    with pytest.raises(ApplicationError):
        services.migrate_points(
            from_account=account,
            points_out=1234,
            reason_out="out",
            idempotency_key="k1",
            to_program=scenario.new,
            points_in=11,
            reason_in="in",
        )


def test_migrate_points_refuses_an_amount_that_is_not_the_whole_balance(scenario):
    with pytest.raises(ApplicationError) as refusal:
        services.migrate_points(
            from_account=scenario.accounts["online"], points_out=1000, reason_out="out", idempotency_key="k2"
        )
    assert refusal.value.code == "balance_changed"
    assert scenario.accounts["online"].entries.filter(kind=LedgerEntry.Kind.MIGRATE).count() == 0


def test_a_membership_closed_after_accepting_is_closed_not_carried_over(scenario):
    account = scenario.accounts["online"]
    account.member.status = "closed"
    account.member.save()
    account.refresh_from_db()

    decision = transitions.decide(
        plan=scenario.plan, account=account, accepted=True, new_tier=None, program=scenario.old
    )

    assert (decision.state, decision.accepted, decision.points_out, decision.points_in) == ("closed", True, 1234, 0)
