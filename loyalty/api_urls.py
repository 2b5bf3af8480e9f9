"""/api/v1/: the point-of-sale API (loyalty/urls.py mounts it with the rewards endpoints)."""

from django.urls import path

from loyalty import api

urlpatterns = [
    path("members/", api.MembersView.as_view(), name="api-members"),
    path("members/<str:member_no>/", api.MemberDetailView.as_view(), name="api-member"),
    path("purchases/", api.PurchasesView.as_view(), name="api-purchases"),
    path("purchases/<int:purchase_id>/returns/", api.PurchaseReturnsView.as_view(), name="api-purchase-returns"),
    path("activities/", api.ActivitiesView.as_view(), name="api-activities"),
    path("me/", api.MeView.as_view(), name="api-me"),
]
