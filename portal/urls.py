from django.urls import include, path, re_path

from portal import analytics, desk, imports, jobs, me, transitions, views
from portal.activation import ActivateView

me_patterns = [
    path("", me.DashboardView.as_view(), name="dashboard"),
    path("join/", me.JoinView.as_view(), name="join"),
    path("statement/<int:account_pk>/", me.StatementView.as_view(), name="statement"),
    path("claims/", me.ClaimsView.as_view(), name="claims"),
    path("claims/<int:pk>/evidence/", me.ClaimEvidenceView.as_view(), name="claim_evidence"),
    path("referrals/", me.ReferralsView.as_view(), name="referrals"),
    path("profile/", me.ProfileView.as_view(), name="profile"),
    path("card/", me.CardView.as_view(), name="card"),
    path("rewards/", me.RewardsView.as_view(), name="rewards"),
    path("rewards/<int:pk>/", me.RewardDetailView.as_view(), name="reward"),
    path("vouchers/", me.VouchersView.as_view(), name="vouchers"),
    path("vouchers/<str:code>/", me.VoucherView.as_view(), name="voucher"),
    re_path(r"^data\.(?P<fmt>json|csv)$", me.DataExportView.as_view(), name="data"),
    path("close/", me.CloseAccountView.as_view(), name="close"),
    path("transitions/<int:pk>/", transitions.TransitionAcceptView.as_view(), name="transition"),
]
desk_patterns = [
    path("", desk.DeskHomeView.as_view(), name="home"),
    path("enrol/", desk.DeskEnrolView.as_view(), name="enrol"),
    path("enrol/check/", desk.DeskDuplicateCheckView.as_view(), name="duplicates"),
    path("members/<str:member_no>/", desk.DeskMemberView.as_view(), name="member"),
    path("members/<str:member_no>/purchase/", desk.DeskRecordView.as_view(kind="purchase"), name="purchase"),
    path("members/<str:member_no>/activity/", desk.DeskRecordView.as_view(kind="activity"), name="activity"),
    path("members/<str:member_no>/card/", desk.MemberCardView.as_view(), name="card"),
    path("members/<str:member_no>/redeem/", desk.DeskRedeemView.as_view(), name="redeem"),
    path(
        "members/<str:member_no>/terms/<int:pk>/accept/",
        transitions.DeskTransitionAcceptView.as_view(),
        name="transition_accept",
    ),
    path("vouchers/", desk.DeskVoucherView.as_view(), name="vouchers"),
]
staff_patterns = [
    path("", views.StaffHomeView.as_view(), name="home"),
    path("jobs/", jobs.JobsView.as_view(), name="jobs"),
    path("jobs/<str:name>/run/", jobs.JobStartView.as_view(), name="job_start"),
    path("jobs/runs/<int:pk>/retry/", jobs.JobRetryView.as_view(), name="job_retry"),
    path("programs/<slug:slug>/imports/", imports.ImportListView.as_view(), name="imports"),
    path("programs/<slug:slug>/imports/tell/", imports.TellImportedMembersView.as_view(), name="imports_tell"),
    path("programs/<slug:slug>/imports/<int:pk>/", imports.ImportDetailView.as_view(), name="import"),
    path("programs/<slug:slug>/imports/<int:pk>/run/", imports.ImportStartView.as_view(), name="import_start"),
    path("programs/<slug:slug>/imports/<int:pk>/errors.csv", imports.ImportErrorsView.as_view(), name="import_errors"),
    path("analytics/", analytics.OverviewView.as_view(), name="analytics"),
    path("analytics/overview.csv", analytics.OverviewCSVView.as_view(), name="analytics_csv"),
    path("analytics/liability/", analytics.LiabilityView.as_view(), name="analytics_liability"),
    path("analytics/liability.csv", analytics.LiabilityCSVView.as_view(), name="analytics_liability_csv"),
    path("analytics/value/", analytics.PyramidView.as_view(), name="analytics_value"),
    path("analytics/value.csv", analytics.PyramidCSVView.as_view(), name="analytics_value_csv"),
    path("analytics/cohorts/", analytics.CohortsView.as_view(), name="analytics_cohorts"),
    path("analytics/cohorts.csv", analytics.CohortsCSVView.as_view(), name="analytics_cohorts_csv"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("me/", include((me_patterns, "me"))),
    path("desk/", include((desk_patterns, "desk"))),
    path("staff/", include((staff_patterns, "staff"))),
    path("accounts/activate/<str:token>/", ActivateView.as_view(), name="activate"),
]
