"""The admin shows transitions and their outcomes, and changes nothing there."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", ["transition", "transitionnotice", "migrationplan", "migrationoutcome"])
def test_the_admin_lists_transition_records_read_only(client, manager_user, model):
    client.force_login(manager_user)

    listing = client.get(reverse(f"admin:campaigns_{model}_changelist"))
    adding = client.get(reverse(f"admin:campaigns_{model}_add"))

    assert listing.status_code == 200
    assert adding.status_code == 403
