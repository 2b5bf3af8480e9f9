"""The Redis cache backend (CACHES), keeping one Redis client per server instead of one per command.

Django's RedisCacheClient builds a new `redis.Redis` for every cache call, and each one fills a table of
some 200 reply callbacks in its __init__: two of them per point-of-sale request (the rate limit's read
and write), 5% of the request's CPU under load (bench/RESULTS.md). A `redis.Redis` is safe to share
between threads (each command borrows a connection from the pool), so one per connection pool will do.
"""

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient
