import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


def test_health_check_answers_ok_when_database_and_cache_respond(client):
    response = client.get("/healthz/")

    assert response.status_code == 200
    assert response.json() == {"database": "ok", "cache": "ok"}


def test_health_check_says_which_part_failed(client):
    # A Redis cache on a port where nothing listens: the real failure a load balancer must see.
    unreachable = {"default": {"BACKEND": "loyalty.core.cache.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}}
    with override_settings(CACHES=unreachable):
        response = client.get("/healthz/")

    assert response.status_code == 503
    assert response.json()["database"] == "ok"
    assert response.json()["cache"].startswith("error: ")
