from django.contrib import messages
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from members.selectors import user_has_second_factor, user_is_program_staff

PROTECTED_PREFIXES = ("/staff/", "/admin/")


class StaffMFARequiredMiddleware:
    """Program staff must enrol a TOTP second factor before they reach staff pages or the admin.

    Once enrolled, allauth asks for the code at every sign-in, so enrolment is all we check here.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            # path_info, not path: a deployment under a URL prefix must not slip past the check.
            request.path_info.startswith(PROTECTED_PREFIXES)
            and user_is_program_staff(user=request.user)
            and not user_has_second_factor(user=request.user)
        ):
            messages.warning(
                request,
                _("Staff pages hold members' personal data: set up two-factor authentication to continue."),
            )
            return redirect("mfa_activate_totp")
        return self.get_response(request)
