"""A member's data, as they may download it (right of access and portability)."""

from loyalty.core.spreadsheets import spreadsheet_safe
from loyalty.models import Account, Activity, LedgerEntry, Purchase, TermsAcceptance
from members.models import Member

__all__ = ["LEDGER_COLUMNS", "export", "ledger_rows", "spreadsheet_safe"]

MEMBER_FIELDS = [
    "member_no",
    "first_name",
    "last_name",
    "company",
    "email",
    "phone",
    "street",
    "postal_code",
    "city",
    "country",
    "region",
    "member_type",
    "language",
    "birth_date",
    "enrolment_channel",
    "enrolled_at",
    "marketing_consent",
    "marketing_consent_at",
    "referral_code",
]
LEDGER_COLUMNS = ["program", "date", "kind", "points", "qualifying_points", "explanation", "expires_at", "available"]


def export(*, member: Member) -> dict:
    accounts = Account.objects.filter(member=member).select_related("program", "tier")
    return {
        "member": {field: _plain(getattr(member, field)) for field in MEMBER_FIELDS},
        "home_store": str(member.home_store) if member.home_store_id else None,
        "consents": [
            {"granted": c.granted, "channel": c.channel, "at": c.recorded_at.isoformat()}
            for c in member.consent_records.all()
        ],
        "accounts": [
            {
                "program": a.program.name,
                "balance": a.balance,
                "pending": a.pending,
                "tier": a.tier.name if a.tier else None,
                "enrolled_at": a.enrolled_at.isoformat(),
                "terms_accepted": [
                    {"version": t.terms.version, "at": t.accepted_at.isoformat(), "channel": t.channel}
                    for t in TermsAcceptance.objects.filter(account=a).select_related("terms")
                ],
                "purchases": [
                    {
                        "receipt": p.receipt_number,
                        "amount": str(p.amount),
                        "currency": p.currency,
                        "returned": str(p.returned_amount),
                        "at": p.occurred_at.isoformat(),
                    }
                    for p in Purchase.objects.filter(account=a).order_by("occurred_at")
                ],
                "activities": [
                    {
                        "type": act.activity_type,
                        "quantity": str(act.quantity),
                        "description": act.description,
                        "status": act.status,
                        "at": act.occurred_at.isoformat(),
                    }
                    for act in Activity.objects.filter(account=a).order_by("occurred_at")
                ],
                "ledger": [dict(zip(LEDGER_COLUMNS[1:], row[1:], strict=True)) for row in _rows(a)],
            }
            for a in accounts
        ],
    }


def ledger_rows(*, member: Member):
    for account in Account.objects.filter(member=member).select_related("program"):
        yield from _rows(account)


def _rows(account: Account):
    entries = LedgerEntry.objects.filter(account=account).order_by("occurred_at", "pk")
    for e in entries.iterator(chunk_size=2000):
        yield [
            account.program.name,
            e.occurred_at.isoformat(),
            e.kind,
            e.points,
            e.qualifying_points,
            e.reason,
            e.expires_at.isoformat() if e.expires_at else "",
            e.is_available,
        ]


def _plain(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if value is None or isinstance(value, bool | int):
        return value
    return str(value)
