"""The reward catalogue's staff pages, under /staff/programs/<slug>/rewards/."""

from django.urls import path

from rewards import views

app_name = "rewards"

urlpatterns = [
    path("", views.RewardListView.as_view(), name="list"),
    path("new/", views.RewardEditView.as_view(), name="add"),
    path("<int:pk>/", views.RewardEditView.as_view(), name="edit"),
    path("redemptions/", views.FulfilmentView.as_view(), name="fulfilment"),
    path("redemptions/<int:pk>/fulfil/", views.RedemptionDecisionView.as_view(decision="fulfil"), name="fulfil"),
    path("redemptions/<int:pk>/cancel/", views.RedemptionDecisionView.as_view(decision="cancel"), name="cancel"),
]
