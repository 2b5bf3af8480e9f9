from django.urls import path

from rewards import api

urlpatterns = [
    path("members/<str:member_no>/rewards/", api.MemberRewardsView.as_view(), name="api-member-rewards"),
    path("redemptions/", api.RedemptionsView.as_view(), name="api-redemptions"),
    path("vouchers/<str:code>/", api.VoucherDetailView.as_view(), name="api-voucher"),
    path("vouchers/<str:code>/redeem/", api.VoucherRedeemView.as_view(), name="api-voucher-redeem"),
    path("me/vouchers/", api.MyVouchersView.as_view(), name="api-me-vouchers"),
]
