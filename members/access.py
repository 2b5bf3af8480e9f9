"""Who may open which area. Views use these mixins; the refusals are tested in tests/test_access.py.

Django's PermissionRequiredMixin sends anonymous visitors to sign in and answers 403 to
signed-in users who lack the permission.
"""

from django.contrib.auth.mixins import PermissionRequiredMixin


class ClerkRequiredMixin(PermissionRequiredMixin):
    """The store clerk desk (Store clerk role)."""

    permission_required = "members.use_desk"


class StaffRequiredMixin(PermissionRequiredMixin):
    """Program staff pages (Program manager, Analyst).

    The second factor is enforced for the whole /staff/ and /admin/ areas by
    members.middleware.StaffMFARequiredMiddleware.
    """

    permission_required = "members.view_staff_pages"
