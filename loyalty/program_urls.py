"""The engine's staff pages, under /staff/programs/ (loyalty/urls.py is the project's root URLconf)."""

from django.urls import path, re_path

from loyalty import views

app_name = "programs"

urlpatterns = [
    path("", views.ProgramListView.as_view(), name="list"),
    path("<slug:slug>/", views.ProgramDetailView.as_view(), name="detail"),
    path("<slug:slug>/preview/", views.EarnPreviewView.as_view(), name="preview"),
    path("<slug:slug>/tiers/", views.TierLadderView.as_view(), name="tiers"),
    path("<slug:slug>/claims/", views.ClaimsView.as_view(), name="claims"),
    re_path(
        r"^(?P<slug>[-\w]+)/claims/(?P<pk>\d+)/(?P<decision>approve|reject)/$",
        views.ClaimDecisionView.as_view(),
        name="claim_decision",
    ),
    path("<slug:slug>/claims/<int:pk>/evidence/", views.ClaimEvidenceView.as_view(), name="claim_evidence"),
    path("<slug:slug>/adjust/", views.AdjustView.as_view(), name="adjust"),
]
