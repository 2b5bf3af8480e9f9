"""The program manager's API keys page in a real browser, on a phone: a key created and shown once,
then only its prefix, and revoked."""

import pytest

from members.models import StoreAPIKey

PHONE = {"width": 390, "height": 844}

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("page", [PHONE], indirect=True)
def test_a_manager_creates_and_revokes_a_till_key_on_a_phone(page, screenshot, sign_in, manager_user, store):
    sign_in(manager_user)

    page.goto("/staff/api-keys/")
    page.select_option("select[name=store]", str(store.pk))
    page.fill("input[name=name]", "Till 2")
    page.click("button[type=submit]:has-text('Create the key')")

    key = page.locator("[data-testid=new-key]").inner_text()
    api_key = StoreAPIKey.objects.get()
    assert key.startswith(api_key.prefix + ".")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot("key-shown-once")

    page.goto("/staff/api-keys/")
    assert key not in page.content()
    assert api_key.prefix in page.locator("tbody").inner_text()
    page.click("button:has-text('Revoke')")

    assert "revoked" in page.locator("main").inner_text()
    api_key.refresh_from_db()
    assert api_key.revoked
    screenshot("key-revoked")
