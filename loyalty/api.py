"""The point-of-sale API of the engine (/api/v1/): members (exact lookup, enrolment, balances),
purchases, returns and activities; and the member's own summary (/api/v1/me/).

Views are thin: an input serializer, one service or selector call, an output serializer. A key acts
only in the programs its store runs: a member or purchase outside them is "not found".
"""

from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty import selectors, services
from loyalty.core.api import ErrorSerializer, page_of, paginated, status_for
from loyalty.core.exceptions import ApplicationError
from loyalty.models import Account, ActivityType
from members.api_keys import IdempotentPostMixin, PosAPIView
from members.filters import MemberLookupFilter
from members.models import Member

EXPIRING_DAYS = 90


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=True,
    description="New for each new request; a retry with the same key gets the first response again.",
)
IDEMPOTENCY_KEY_OPTIONAL = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, description="Optional: makes a retry safe."
)


def _responses(by_status: dict[int, list[str]]) -> dict:
    return {
        status_code: OpenApiResponse(ErrorSerializer, description="Error codes: " + ", ".join(sorted(found)))
        for status_code, found in by_status.items()
    }


def errors(*codes: str) -> dict:
    """The error responses of a point-of-sale endpoint, for the schema: each status with its codes."""
    by_status: dict[int, list[str]] = {}
    for code in ("invalid", "not_authenticated", "api_key_invalid", "rate_limited", *codes):
        by_status.setdefault(status_for(code), []).append(code)
    return _responses(by_status)


# A member's own endpoints use the portal's session: without one, DRF answers 403 (no challenge to send).
ME_ERRORS = _responses({403: ["not_authenticated", "permission_denied"], 404: ["member_not_found"]})


def pos_key(request) -> str:
    """The engine's idempotency key: the header, scoped to the store (keys are unique per program)."""
    return f"pos:{request.auth.store.code}:{request.headers['Idempotency-Key'].strip()}"


# --- output ---------------------------------------------------------------------------------------


class TierProgressSerializer(serializers.Serializer):
    tier = serializers.CharField(source="tier.name", allow_null=True, default=None)
    next_tier = serializers.CharField(source="next_tier.name", allow_null=True, default=None)
    qualifying = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=False)
    missing = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=False)
    percent = serializers.IntegerField()
    window_closes_at = serializers.DateTimeField(allow_null=True)
    kept_tier = serializers.CharField(source="kept_tier.name", allow_null=True, default=None)
    review_at = serializers.DateTimeField(allow_null=True)


class ExpiringSerializer(serializers.Serializer):
    date = serializers.DateField()
    points = serializers.IntegerField()


class AccountSerializer(serializers.Serializer):
    program = serializers.SlugField(source="program.slug")
    points_name = serializers.CharField(source="program.points_name")
    balance = serializers.IntegerField()
    pending = serializers.IntegerField()
    tier = serializers.CharField(source="tier.name", allow_null=True, default=None)
    tier_progress = serializers.SerializerMethodField()
    expiring = serializers.SerializerMethodField()

    @extend_schema_field(TierProgressSerializer)
    def get_tier_progress(self, account) -> dict:
        return TierProgressSerializer(selectors.tier_progress(account=account)).data

    @extend_schema_field(ExpiringSerializer(many=True))
    def get_expiring(self, account) -> list:
        return ExpiringSerializer(selectors.points_expiring_within(account=account, days=EXPIRING_DAYS), many=True).data


class MemberSummarySerializer(serializers.Serializer):
    member_no = serializers.CharField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    company = serializers.CharField()
    email = serializers.CharField(allow_blank=True, help_text="Empty when the member gave none.")
    phone = serializers.CharField(allow_blank=True, help_text="E.164; empty when the member gave none.")
    status = serializers.CharField()


class MemberDetailSerializer(MemberSummarySerializer):
    accounts = AccountSerializer(many=True)


def member_detail(member: Member, accounts: list[Account]) -> dict:
    data = MemberSummarySerializer(member).data
    data["accounts"] = AccountSerializer(accounts, many=True).data
    return data


# --- members --------------------------------------------------------------------------------------


class EnrolInputSerializer(serializers.Serializer):
    program = serializers.SlugField(required=False, help_text="Needed when the store runs several programs.")
    first_name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    last_name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    company = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    postal_code = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    member_type = serializers.CharField(max_length=40, required=False, default="consumer")
    language = serializers.ChoiceField(choices=["en", "fr", "nl"], required=False, default="en")
    marketing_consent = serializers.BooleanField(required=False, default=False)
    accept_terms = serializers.BooleanField(help_text="The customer read and accepted the program terms.")
    referral_code = serializers.CharField(max_length=12, required=False, allow_blank=True, default="")
    invitation_code = serializers.CharField(max_length=16, required=False, allow_blank=True, default="")


@extend_schema_view(
    get=extend_schema(
        operation_id="members_lookup",
        summary="Find a member by card number, phone or email (exact match)",
        parameters=[
            OpenApiParameter("card", str, description="Card number as printed (spaces and dashes ignored)."),
            OpenApiParameter("phone", str, description="Phone in any usual form; compared in E.164."),
            OpenApiParameter("email", str, description="Email, case-insensitive."),
        ],
        responses={200: page_of(MemberSummarySerializer), **errors()},
    ),
    post=extend_schema(
        operation_id="members_enrol",
        summary="Enrol a customer",
        request=EnrolInputSerializer,
        parameters=[IDEMPOTENCY_KEY_OPTIONAL],
        responses={
            201: MemberDetailSerializer,
            **errors("duplicate_member", "terms_not_accepted", "program_required", "idempotency_key_reused"),
        },
        examples=[
            OpenApiExample(
                "Enrol",
                value={"first_name": "Lotte", "last_name": "Janssens", "phone": "+32470112233", "accept_terms": True},
                request_only=True,
            )
        ],
    ),
)
class MembersView(IdempotentPostMixin, PosAPIView):
    """Exact lookup of members (no fuzzy search through the API), and enrolment at the till."""

    idempotency_required = False

    def get(self, request):
        served = selectors.members_served_by(store=self.store).exclude(status=Member.Status.ANONYMISED)
        lookup = MemberLookupFilter(request.query_params, queryset=served)
        if not lookup.is_valid():
            raise serializers.ValidationError(lookup.errors)
        if not lookup.has_criteria():
            raise ApplicationError(
                _("Give a card number, a phone or an email to look for."), code="invalid", extra={"field": "card"}
            )
        return paginated(self, lookup.qs.order_by("pk"), MemberSummarySerializer)

    def perform_post(self, request):
        fields = dict(self.validated(EnrolInputSerializer))
        slug = fields.pop("program", "")
        programs = list(selectors.store_programs(store=self.store))
        if slug:
            programs = [p for p in programs if p.slug == slug]
        if len(programs) != 1:
            raise ApplicationError(
                _("Say which program to enrol in (“program”): one this store runs."),
                code="program_required",
                extra={"field": "program"},
            )
        account = services.member_enrol(
            program=programs[0],
            channel=Member.Channel.API,
            accept_terms=fields.pop("accept_terms"),
            invitation_code=fields.pop("invitation_code"),
            referral_code=fields.pop("referral_code"),
            store=self.store,
            home_store=self.store,
            **fields,
        )
        body = member_detail(account.member, selectors.desk_accounts(store=self.store, member=account.member))
        return Response(body, status=status.HTTP_201_CREATED)


class MemberDetailView(PosAPIView):
    @extend_schema(
        operation_id="members_detail",
        summary="A member's balance, pending points, tier, tier progress and points expiring in 90 days",
        responses={200: MemberDetailSerializer, **errors("member_not_found")},
    )
    def get(self, request, member_no):
        member = selectors.store_member(store=self.store, member_no=member_no)
        return Response(member_detail(member, selectors.desk_accounts(store=self.store, member=member)))


# --- purchases, returns, activities ---------------------------------------------------------------


class LineSerializer(serializers.Serializer):
    category = serializers.CharField(max_length=40)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal(0))


class EntrySerializer(serializers.Serializer):
    points = serializers.IntegerField()
    reason = serializers.CharField()
    available_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)


class PurchaseInputSerializer(serializers.Serializer):
    member = serializers.CharField(max_length=40, help_text="Card number.")
    program = serializers.SlugField(required=False, default="", help_text="Needed when the store runs several.")
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"))
    currency = serializers.RegexField(r"^[A-Z]{3}$", help_text="ISO code, e.g. EUR.")
    receipt_number = serializers.CharField(max_length=64)
    occurred_at = serializers.DateTimeField(help_text="With its time zone, e.g. 2026-11-23T10:15:00+01:00.")
    lines = LineSerializer(many=True, required=False, default=list)


class EarnOutputSerializer(serializers.Serializer):
    """What an earn answers (see _earn_output): the points with their explanations, and the account after."""

    points = serializers.IntegerField(
        help_text="Points earned (purchase points are pending through the return window)."
    )
    explanations = serializers.ListField(child=serializers.CharField())
    entries = EntrySerializer(many=True)
    balance = serializers.IntegerField()
    pending = serializers.IntegerField()
    tier = serializers.CharField(allow_null=True)
    upgraded_to = serializers.CharField(allow_null=True, help_text="The tier this earn lifted the member to.")


class PurchaseOutputSerializer(EarnOutputSerializer):
    id = serializers.IntegerField(help_text="Use it to post a return.")
    receipt_number = serializers.CharField()


def _earn_output(result) -> dict:
    account = result.account
    return {
        "points": result.points,
        "explanations": result.explanations,
        "entries": EntrySerializer(result.entries, many=True).data,
        "balance": account.balance,
        "pending": account.pending,
        "tier": account.tier.name if account.tier else None,
        "upgraded_to": result.upgraded_to.name if result.upgraded_to else None,
    }


@extend_schema_view(
    post=extend_schema(
        operation_id="purchases_create",
        summary="Post a purchase: the points earned, with their explanations, and the new balance",
        request=PurchaseInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: PurchaseOutputSerializer,
            **errors(
                "idempotency_key_required",
                "idempotency_key_reused",
                "member_not_found",
                "program_required",
                "duplicate_receipt",
                "currency_mismatch",
                "amount_too_large",
                "occurred_in_future",
                "occurred_too_long_ago",
                "program_not_running",
                "member_not_active",
            ),
        },
        examples=[
            OpenApiExample(
                "Purchase with lines",
                value={
                    "member": "8000000011",
                    "amount": "120.00",
                    "currency": "EUR",
                    "receipt_number": "T2-000123",
                    "occurred_at": "2026-11-23T10:15:00+01:00",
                    "lines": [{"category": "PAINT", "amount": "40.00"}],
                },
                request_only=True,
            )
        ],
    )
)
class PurchasesView(IdempotentPostMixin, PosAPIView):
    def perform_post(self, request):
        data = self.validated(PurchaseInputSerializer)
        result = services.earn_for_purchase(
            member_no=data["member"],
            program_slug=data["program"],
            amount=data["amount"],
            currency=data["currency"],
            receipt_number=data["receipt_number"],
            occurred_at=data["occurred_at"],
            lines=[{"category": line["category"], "amount": line["amount"]} for line in data["lines"]],
            idempotency_key=pos_key(request),
            store=self.store,
        )
        body = {"id": result.purchase.pk, "receipt_number": result.purchase.receipt_number, **_earn_output(result)}
        return Response(body, status=status.HTTP_201_CREATED)


class ReturnInputSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"), required=False)
    lines = LineSerializer(many=True, required=False, help_text="Returned lines; their amounts are added up.")

    def validate(self, attrs):
        if ("amount" in attrs) == bool(attrs.get("lines")):
            raise serializers.ValidationError(_("Give the amount returned or the lines returned, not both."))
        return attrs


class ReturnOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    points_reversed = serializers.IntegerField()
    points_shortfall = serializers.IntegerField(help_text="Points of the purchase already spent: not taken back.")
    balance = serializers.IntegerField()
    pending = serializers.IntegerField()


@extend_schema_view(
    post=extend_schema(
        operation_id="purchases_return",
        summary="Post a return: points are taken back in proportion to the amount returned",
        request=ReturnInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: ReturnOutputSerializer,
            **errors(
                "idempotency_key_required", "idempotency_key_reused", "purchase_not_found", "return_exceeds_purchase"
            ),
        },
    )
)
class PurchaseReturnsView(IdempotentPostMixin, PosAPIView):
    def perform_post(self, request, purchase_id):
        data = self.validated(ReturnInputSerializer)
        purchase = selectors.store_purchase(store=self.store, pk=purchase_id)
        if purchase is None:
            raise ApplicationError(
                _("No purchase %(id)s in this store's programs.") % {"id": purchase_id}, code="purchase_not_found"
            )
        amount = data.get("amount") or sum(line["amount"] for line in data["lines"])
        result = services.reverse_purchase(purchase=purchase, amount=amount, idempotency_key=pos_key(request))
        returned = result.purchase_return
        account = Account.objects.get(pk=purchase.account_id)
        body = {
            "id": returned.pk,
            "amount": returned.amount,
            "points_reversed": returned.points_reversed,
            "points_shortfall": returned.points_shortfall,
            "balance": account.balance,
            "pending": account.pending,
        }
        return Response(ReturnOutputSerializer(body).data, status=status.HTTP_201_CREATED)


POS_ACTIVITY_TYPES = [
    ActivityType.TRAINING_HOURS,
    ActivityType.CERTIFICATION,
    ActivityType.EVENT_ATTENDANCE,
    ActivityType.CHECK_IN,
    ActivityType.REVIEW,
    ActivityType.CUSTOM_CODE,
]


class ActivityInputSerializer(serializers.Serializer):
    member = serializers.CharField(max_length=40)
    program = serializers.SlugField(required=False, default="")
    activity_type = serializers.ChoiceField(choices=POS_ACTIVITY_TYPES)
    quantity = serializers.DecimalField(
        max_digits=8, decimal_places=2, min_value=Decimal("0.01"), required=False, default=Decimal(1)
    )
    code = serializers.SlugField(max_length=40, required=False, allow_blank=True, default="")
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    occurred_at = serializers.DateTimeField(required=False, help_text="Defaults to now.")


class ActivityOutputSerializer(EarnOutputSerializer):
    id = serializers.IntegerField()
    status = serializers.CharField(help_text="approved, or pending_review when staff must approve it first.")


@extend_schema_view(
    post=extend_schema(
        operation_id="activities_create",
        summary="Record a non-spend activity (training, event attendance, check-in, custom code)",
        request=ActivityInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: ActivityOutputSerializer,
            **errors(
                "idempotency_key_required",
                "idempotency_key_reused",
                "member_not_found",
                "program_required",
                "unknown_activity_type",
            ),
        },
    )
)
class ActivitiesView(IdempotentPostMixin, PosAPIView):
    def perform_post(self, request):
        data = self.validated(ActivityInputSerializer)
        account = selectors.store_account(store=self.store, member_no=data["member"], program_slug=data["program"])
        result = services.earn_for_activity(
            account=account,
            activity_type=data["activity_type"],
            quantity=data["quantity"],
            code=data["code"],
            description=data["description"],
            occurred_at=data.get("occurred_at") or timezone.now(),
            idempotency_key=pos_key(request),
            store=self.store,
        )
        body = {"id": result.activity.pk, "status": result.activity.status, **_earn_output(result)}
        return Response(body, status=status.HTTP_201_CREATED)


# --- the member's own app ---------------------------------------------------------------------------


class MemberAPIView(APIView):
    """An endpoint of the member's own app: the portal's session, and only the signed-in member's data."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAuthenticated]

    def signed_in_member(self) -> Member:
        member = Member.objects.filter(user=self.request.user, status=Member.Status.ACTIVE).first()
        if member is None:
            raise ApplicationError(_("You are not an active member."), code="member_not_found")
        return member


class MeView(MemberAPIView):
    """The signed-in member's own accounts."""

    @extend_schema(
        operation_id="me",
        summary="The signed-in member's accounts",
        responses={200: MemberDetailSerializer, **ME_ERRORS},
    )
    def get(self, request):
        member = self.signed_in_member()
        return Response(member_detail(member, selectors.member_accounts(member=member)))
