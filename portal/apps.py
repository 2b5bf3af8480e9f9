from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PortalConfig(AppConfig):
    """The pages that compose every app's selectors: /me/, /desk/ and the /staff/ home. No models."""

    name = "portal"
    verbose_name = _("Portal pages")
