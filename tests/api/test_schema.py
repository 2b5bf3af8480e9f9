"""The OpenAPI schema is the API's contract: schemathesis generates requests for every operation from
/api/schema/ and sends them to the app in-process (WSGI, the test database). No request may get a 500,
and every response must match what the schema promises (status, content type, headers, body)."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from tests.api.conftest import give_voucher
from tests.factories import RewardFactory

# The member number in the schema's examples, so the explicit examples reach a real member.
EXAMPLE_CARD = "8000000011"

# Loaded once at collection (drf-spectacular's view answers without the database); the requests of each
# example go to the same WSGI application in-process, inside the test's transaction.
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Django closes a connection that is not in autocommit at the end of each request; inside a test's
    transaction that would close it under the test (Django's own test client disconnects it the same way)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def till_data(db, shop, customer):
    """What the examples name: the member with the example card, a reward and a voucher."""
    account = customer(phone="+32470112233")
    account.member.member_no = EXAMPLE_CARD
    account.member.save(update_fields=["member_no"])
    RewardFactory(program=shop, points_cost=10)
    give_voucher(account, "schema-voucher")


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure is reproducible, CI is not flaky
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_operation_answers_what_its_schema_promises_and_never_a_500(case, store_key, till_data):
    # Two checks judge the requests rather than the API's answers, and do not fit it: a schema-valid body
    # naming an unknown member is rightly refused (positive_data_acceptance wants a 2xx), and unknown query
    # parameters are ignored as HTTP APIs customarily do (negative_data_rejection wants them refused).
    # Every check of the answers runs: no 500, and status, content type, headers and body as documented.
    case.call_and_validate(
        headers={"Authorization": f"Api-Key {store_key[1]}"},
        excluded_checks=[positive_data_acceptance, negative_data_rejection],
    )


@pytest.mark.django_db
def test_the_docs_page_loads_everything_from_this_server(client):
    response = client.get("/api/docs/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "swagger-ui" in page
    assert "cdn" not in page.lower() and "https://" not in page
    assert client.get("/api/schema/").status_code == 200
