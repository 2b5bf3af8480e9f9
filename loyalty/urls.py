from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path

from loyalty.core.views import healthz

urlpatterns = [
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("healthz/", healthz, name="healthz"),
    path("staff/programs/", include("loyalty.program_urls")),
    path("staff/programs/<slug:slug>/rewards/", include("rewards.urls")),
    path("", include("portal.urls")),
    *static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT),  # serves uploads only when DEBUG is on
]
