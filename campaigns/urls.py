"""Campaign staff pages, under /staff/programs/<slug>/ (segments/, campaigns/, messages/, transitions/)."""

from django.urls import path

from campaigns.views import campaigns, messages, segments, transitions

app_name = "campaigns"

urlpatterns = [
    # --- segments (campaigns/views/segments.py) ---
    path("segments/", segments.SegmentListView.as_view(), name="segments"),
    path("segments/new/", segments.SegmentEditView.as_view(), name="segment_add"),
    path("segments/count/", segments.SegmentCountView.as_view(), name="segment_count"),
    path("segments/<int:pk>/", segments.SegmentEditView.as_view(), name="segment_edit"),
    path("segments/<int:pk>/delete/", segments.SegmentDeleteView.as_view(), name="segment_delete"),
    # --- campaigns (campaigns/views/campaigns.py) ---
    path("campaigns/", campaigns.CampaignListView.as_view(), name="campaigns"),
    path("campaigns/new/", campaigns.CampaignEditView.as_view(), name="campaign_add"),
    path("campaigns/<int:pk>/", campaigns.CampaignDetailView.as_view(), name="campaign"),
    path("campaigns/<int:pk>/edit/", campaigns.CampaignEditView.as_view(), name="campaign_edit"),
    *(
        path(
            f"campaigns/<int:pk>/{action}/",
            campaigns.CampaignActionView.as_view(action=action),
            name=f"campaign_{action}",
        )
        for action in campaigns.CampaignActionView.ACTIONS
    ),
    path("campaigns/<int:pk>/performance/", campaigns.CampaignPerformanceView.as_view(), name="campaign_performance"),
    path(
        "campaigns/<int:pk>/performance.csv",
        campaigns.CampaignPerformanceCSVView.as_view(),
        name="campaign_performance_csv",
    ),
    # --- messages (campaigns/views/messages.py) ---
    path("messages/", messages.MessageListView.as_view(), name="messages"),
    path("messages/new/", messages.MessageEditView.as_view(), name="message_add"),
    path("messages/<int:pk>/", messages.MessageEditView.as_view(), name="message_edit"),
    path("messages/<int:pk>/preview/", messages.MessagePreviewView.as_view(), name="message_preview"),
    path("messages/<int:pk>/send/", messages.MessageSendView.as_view(), name="message_send"),
    path("messages/<int:pk>/log/", messages.MessageLogView.as_view(), name="message_log"),
    # --- program transitions (campaigns/views/transitions.py) ---
    path("transitions/", transitions.TransitionListView.as_view(), name="transitions"),
    path("transitions/<int:pk>/", transitions.TransitionDetailView.as_view(), name="transition"),
    path("transitions/<int:pk>/plan/", transitions.MigrationPlanView.as_view(), name="transition_plan"),
    *(
        path(
            f"transitions/<int:pk>/{action}/",
            transitions.TransitionActionView.as_view(action=action),
            name=f"transition_{action}",
        )
        for action in transitions.TransitionActionView.ACTIONS
    ),
    path("transitions/<int:pk>/rewards/", transitions.TransitionRewardsView.as_view(), name="transition_rewards"),
    path("transitions/<int:pk>/letters.pdf", transitions.TransitionLettersView.as_view(), name="transition_letters"),
    path(
        "transitions/<int:pk>/letters/<int:account_pk>.pdf",
        transitions.MemberLetterView.as_view(),
        name="transition_letter",
    ),
    path("transitions/<int:pk>/report/", transitions.TransitionReportView.as_view(), name="transition_report"),
    path(
        "transitions/<int:pk>/report.csv", transitions.TransitionReportCSVView.as_view(), name="transition_report_csv"
    ),
]
