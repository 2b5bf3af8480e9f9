"""The Redis cache (loyalty.core.cache): one client per server, shared by threads, same answers as Django's."""

import threading

import pytest
from django.conf import settings
from django.core.cache import caches

from loyalty.core.cache import RedisCache
from tests.conftest import _require


@pytest.fixture
def redis_cache():
    _require(settings.REDIS_AVAILABLE, f"Redis is not reachable at TEST_REDIS_URL={settings.REDIS_URL!r}")
    return caches["default"]


def test_every_command_reuses_one_redis_client_instead_of_building_one(redis_cache):
    assert isinstance(redis_cache, RedisCache)
    client = redis_cache._cache.get_client(write=True)

    redis_cache.set("reuse", {"hits": 1}, 30)
    assert redis_cache.get("reuse") == {"hits": 1}
    assert redis_cache.add("counter", 0, 30) is True
    assert redis_cache.incr("counter", 2) == 2

    assert redis_cache._cache.get_client() is client
    assert redis_cache._cache.get_client(write=True) is client


def test_threads_sharing_the_client_each_read_their_own_values(redis_cache):
    errors = []

    def work(n):
        try:
            for i in range(50):
                redis_cache.set(f"thread-{n}", i, 30)
                assert redis_cache.get(f"thread-{n}") == i
        except AssertionError as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert redis_cache.get_many([f"thread-{n}" for n in range(8)]) == {f"thread-{n}": 49 for n in range(8)}
