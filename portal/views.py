from django.shortcuts import redirect, render
from django.views.generic import TemplateView

from members.access import StaffRequiredMixin
from members.selectors import user_area, user_roles

AREA_HOME = {"staff": "staff:home", "clerk": "desk:home", "member": "me:dashboard"}


def home(request):
    """Visitors see what the program offers; signed-in users go to their own area."""
    area = user_area(user=request.user)
    if area == "anonymous":
        return render(request, "home.html")
    return redirect(AREA_HOME[area])


class StaffHomeView(StaffRequiredMixin, TemplateView):
    template_name = "staff/home.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(roles=sorted(user_roles(user=self.request.user)), **kwargs)
