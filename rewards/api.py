"""The point-of-sale API of rewards (/api/v1/): a member's catalogue, redemptions, voucher status and
use at the till; and the member's own vouchers (/api/v1/me/vouchers/)."""

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.response import Response

from loyalty import selectors as engine_selectors
from loyalty.api import IDEMPOTENCY_KEY, ME_ERRORS, MemberAPIView, errors, pos_key
from loyalty.core.api import page_of, paginated
from loyalty.core.exceptions import ApplicationError
from members.api_keys import IdempotentPostMixin, PosAPIView
from rewards import codes, selectors, services


class OfferSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="reward.pk")
    program = serializers.SlugField(source="reward.program.slug")
    name = serializers.CharField(source="reward.name")
    kind = serializers.CharField(source="reward.kind")
    points_cost = serializers.IntegerField(source="reward.points_cost")
    value = serializers.DecimalField(source="reward.value", max_digits=10, decimal_places=2, allow_null=True)
    available = serializers.BooleanField()
    reason_code = serializers.CharField(source="refusal.code", allow_null=True, default=None)
    reason = serializers.CharField(source="refusal.message", allow_null=True, default=None)
    points_missing = serializers.IntegerField(source="refusal.points_missing", default=0)


class VoucherSerializer(serializers.Serializer):
    code = serializers.SerializerMethodField()
    description = serializers.CharField()
    amount = serializers.DecimalField(max_digits=10, decimal_places=2, allow_null=True)
    percent = serializers.DecimalField(max_digits=5, decimal_places=2, allow_null=True)
    currency = serializers.CharField()
    status = serializers.CharField()
    valid_from = serializers.DateField()
    valid_until = serializers.DateField()
    redeemed_at = serializers.DateTimeField(allow_null=True)
    redeemed_store = serializers.CharField(source="redeemed_store.code", allow_null=True, default=None)

    def get_code(self, voucher) -> str:
        return codes.display(voucher.code)


class VoucherStatusSerializer(VoucherSerializer):
    usable = serializers.BooleanField()
    refusal_code = serializers.CharField(allow_null=True)
    refusal = serializers.CharField(allow_null=True)
    member = serializers.CharField(source="account.member.member_no")


class MemberRewardsView(PosAPIView):
    @extend_schema(
        operation_id="members_rewards",
        summary="The member's catalogue: each reward redeemable now, or why not",
        responses={200: page_of(OfferSerializer), **errors("member_not_found")},
    )
    def get(self, request, member_no):
        member = engine_selectors.store_member(store=self.store, member_no=member_no)
        offers = []
        for account in engine_selectors.desk_accounts(store=self.store, member=member):
            account.member = member
            offers += selectors.catalogue_for_account(account=account)
        return paginated(self, offers, OfferSerializer)


class RedemptionInputSerializer(serializers.Serializer):
    member = serializers.CharField(max_length=40)
    reward = serializers.IntegerField(min_value=1, max_value=2**62)


class RedemptionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reward = serializers.CharField(source="reward.name")
    points = serializers.IntegerField()
    status = serializers.CharField()
    voucher = VoucherSerializer(allow_null=True)
    balance = serializers.IntegerField(source="account.balance")


@extend_schema_view(
    post=extend_schema(
        operation_id="redemptions_create",
        summary="Redeem a reward for a member: points spent, stock taken, voucher issued",
        request=RedemptionInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: RedemptionOutputSerializer,
            **errors(
                "idempotency_key_required",
                "idempotency_key_reused",
                "member_not_found",
                "reward_not_found",
                "insufficient_points",
                "out_of_stock",
                "limit_reached",
                "needs_tier",
                "not_available",
                "not_offered",
            ),
        },
    )
)
class RedemptionsView(IdempotentPostMixin, PosAPIView):
    def perform_post(self, request):
        data = self.validated(RedemptionInputSerializer)
        reward = selectors.store_reward(store=self.store, pk=data["reward"])
        if reward is None:
            raise ApplicationError(
                _("No such reward in this store's programs."), code="reward_not_found", extra={"field": "reward"}
            )
        account = engine_selectors.store_account(
            store=self.store, member_no=data["member"], program_slug=reward.program.slug
        )
        result = services.redeem(
            account=account, reward=reward, idempotency_key=pos_key(request), channel="api", store=self.store
        )
        redemption = result.redemption
        redemption.account.refresh_from_db(fields=["balance"])
        body = RedemptionOutputSerializer(
            {
                "id": redemption.pk,
                "reward": reward,
                "points": redemption.points,
                "status": redemption.status,
                "voucher": result.voucher,
                "account": redemption.account,
            }
        ).data
        return Response(body, status=status.HTTP_201_CREATED)


def _status(voucher) -> dict:
    refused = services.voucher_refusal(voucher, today=timezone.localdate())
    voucher.usable = refused is None
    voucher.refusal_code = refused.code if refused else None
    voucher.refusal = refused.message if refused else None
    return VoucherStatusSerializer(voucher).data


class VoucherDetailView(PosAPIView):
    @extend_schema(
        operation_id="vouchers_status",
        summary="A voucher's status: usable now, or why not",
        responses={200: VoucherStatusSerializer, **errors("voucher_not_found", "voucher_code_invalid")},
    )
    def get(self, request, code):
        return Response(_status(services.voucher_for_store(code=code, store=self.store)))


@extend_schema_view(
    post=extend_schema(
        operation_id="vouchers_redeem",
        summary="Use a voucher at the till (once)",
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            200: VoucherStatusSerializer,
            **errors(
                "idempotency_key_required",
                "idempotency_key_reused",
                "voucher_not_found",
                "voucher_code_invalid",
                "voucher_already_redeemed",
                "voucher_expired",
                "voucher_cancelled",
                "voucher_not_yet_valid",
            ),
        },
    )
)
class VoucherRedeemView(IdempotentPostMixin, PosAPIView):
    def perform_post(self, request, code):
        return Response(_status(services.voucher_redeem(code=code, store=self.store, redeemed_by=None)))


class MyVouchersView(MemberAPIView):
    """The signed-in member's own vouchers."""

    @extend_schema(
        operation_id="me_vouchers",
        summary="The signed-in member's vouchers",
        responses={200: page_of(VoucherSerializer), **ME_ERRORS},
    )
    def get(self, request):
        return paginated(self, selectors.member_vouchers(member=self.signed_in_member()), VoucherSerializer)
