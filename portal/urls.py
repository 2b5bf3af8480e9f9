from django.urls import include, path

from portal import views

me_patterns = ([path("", views.MemberDashboardView.as_view(), name="dashboard")], "me")
desk_patterns = ([path("", views.DeskHomeView.as_view(), name="home")], "desk")
staff_patterns = ([path("", views.StaffHomeView.as_view(), name="home")], "staff")

urlpatterns = [
    path("", views.home, name="home"),
    path("me/", include(me_patterns)),
    path("desk/", include(desk_patterns)),
    path("staff/", include(staff_patterns)),
]
