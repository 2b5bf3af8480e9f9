"""Campaign staff pages, under /staff/programs/<slug>/ (segments/, campaigns/, messages/)."""

from django.urls import path  # noqa: F401 (routes arrive area by area)

from campaigns.views import campaigns, messages, segments  # noqa: F401

app_name = "campaigns"

urlpatterns = [
    # --- segments (campaigns/views/segments.py) ---
    # --- campaigns (campaigns/views/campaigns.py) ---
    # --- messages (campaigns/views/messages.py) ---
]
