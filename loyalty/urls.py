from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from campaigns.views.messages import UnsubscribeView
from loyalty.core.views import healthz

urlpatterns = [
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("healthz/", healthz, name="healthz"),
    path("api/v1/", include("loyalty.api_urls")),
    path("api/v1/", include("rewards.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("staff/programs/", include("loyalty.program_urls")),
    path("staff/api-keys/", include("members.urls")),
    path("staff/programs/<slug:slug>/rewards/", include("rewards.urls")),
    path("staff/programs/<slug:slug>/", include("campaigns.urls")),
    path("unsubscribe/<str:token>/", UnsubscribeView.as_view(), name="unsubscribe"),
    path("", include("portal.urls")),
    *static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT),  # serves uploads only when DEBUG is on
]

handler404 = "loyalty.core.views.page_not_found"
handler500 = "loyalty.core.views.server_error"
