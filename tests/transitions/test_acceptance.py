"""Members accept the new terms online; clerks record it at the desk. Nobody accepts for someone else."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns import transitions
from loyalty import services
from loyalty.core.exceptions import ApplicationError
from loyalty.models import TermsAcceptance
from members.roles import Role
from members.services import staff_user_create
from tests.factories import MemberFactory, ProgramFactory, StoreFactory, TierFactory

pytestmark = pytest.mark.django_db


def _accepted(account):
    return TermsAcceptance.objects.filter(account=account, terms=transitions.Transition.objects.get().terms).first()


def test_the_dashboard_shows_the_banner_with_the_deadline_and_what_happens_to_the_points(client, scenario, ann):
    client.force_login(ann.member.user)

    page = client.get(reverse("me:dashboard")).content.decode()

    assert 'data-testid="transition-banner"' in page
    assert "Blue Rewards is changing: accept the new terms by" in page
    assert "your 400 pts become a voucher worth 4.40 EUR" in page
    assert reverse("me:transition", args=[scenario.transition.pk]) in page


def test_a_member_reads_the_new_terms_and_accepts_online(client, scenario, ann):
    client.force_login(ann.member.user)
    url = reverse("me:transition", args=[scenario.transition.pk])
    page = client.get(url).content.decode()
    assert "Terms of the program." in page
    assert "your 400 pts become 266 pts in Green Club" in page

    response = client.post(url, {"agree": "1"})

    assert response.status_code == 302
    acceptance = _accepted(ann)
    assert (acceptance.channel, acceptance.recorded_by, acceptance.store) == ("online", None, None)
    assert "you accepted the new terms" in client.get(reverse("me:dashboard")).content.decode()


def test_accepting_without_ticking_the_box_says_what_to_do_and_records_nothing(client, scenario, ann):
    client.force_login(ann.member.user)

    response = client.post(reverse("me:transition", args=[scenario.transition.pk]), {})

    assert response.status_code == 400
    assert "Tick the box" in response.content.decode()
    assert _accepted(ann) is None


def test_a_member_cannot_accept_for_a_program_they_are_not_in(client, scenario, member_user):
    # Ann is a member of another program only: Blue's transition is not hers to accept
    other = ProgramFactory(slug="red")
    TierFactory(program=other, rank=1, threshold=0)
    member = MemberFactory(user=member_user)
    services.enrol(member=member, program=other)
    client.force_login(member_user)

    url = reverse("me:transition", args=[scenario.transition.pk])

    assert client.get(url).status_code == 404
    assert client.post(url, {"agree": "1"}).status_code == 404
    assert not TermsAcceptance.objects.filter(account__member=member).exists()


def test_after_the_deadline_the_terms_can_no_longer_be_accepted(client, scenario, ann):
    today = timezone.localdate()
    transitions.Transition.objects.update(
        announce_on=today - datetime.timedelta(days=9), accept_by=today - datetime.timedelta(days=1)
    )
    client.force_login(ann.member.user)

    assert client.post(reverse("me:transition", args=[scenario.transition.pk]), {"agree": "1"}).status_code == 404
    with pytest.raises(ApplicationError) as refusal:
        transitions.transition_accept(transition=transitions.Transition.objects.get(), account=ann, channel="online")
    assert refusal.value.code == "transition_closed"
    assert _accepted(ann) is None


def test_a_clerk_records_acceptance_at_the_desk_with_their_name_and_store(client, scenario, clerk_user, store):
    account = scenario.accounts["never"]
    client.force_login(clerk_user)
    page = client.get(reverse("desk:member", args=[account.member.member_no])).content.decode()
    action = reverse("desk:transition_accept", args=[account.member.member_no, scenario.transition.pk])
    assert action in page

    response = client.post(action)

    assert response.status_code == 302
    acceptance = _accepted(account)
    assert (acceptance.channel, acceptance.recorded_by, acceptance.store) == ("desk", clerk_user, store)
    assert "Accepted the new terms of Blue Rewards" in client.get(response.url).content.decode()


def test_a_clerk_of_a_store_that_does_not_run_the_program_cannot_accept(client, scenario):
    # the member also belongs to Red, which the other store runs: the clerk sees them, not Blue's terms
    account = scenario.accounts["never"]
    red = ProgramFactory(slug="red")
    TierFactory(program=red, rank=1, threshold=0)
    services.enrol(member=account.member, program=red)
    other_store = StoreFactory()
    red.stores.add(other_store)
    outsider = staff_user_create(
        email="olga@example.com", password="x-Pass-12345", role=Role.STORE_CLERK, store=other_store
    )
    client.force_login(outsider)
    page = client.get(reverse("desk:member", args=[account.member.member_no])).content.decode()
    assert "desk-transition" not in page

    response = client.post(reverse("desk:transition_accept", args=[account.member.member_no, scenario.transition.pk]))

    assert response.status_code == 404
    assert _accepted(account) is None


def test_a_member_cannot_record_a_desk_acceptance(client, scenario, ann):
    client.force_login(ann.member.user)

    response = client.post(reverse("desk:transition_accept", args=[ann.member.member_no, scenario.transition.pk]))

    assert response.status_code == 403
    assert _accepted(ann) is None
