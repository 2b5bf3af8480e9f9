from django.urls import path

from members import views

app_name = "api_keys"

urlpatterns = [
    path("", views.APIKeysView.as_view(), name="list"),
    path("<str:pk>/revoke/", views.APIKeyRevokeView.as_view(), name="revoke"),
]
