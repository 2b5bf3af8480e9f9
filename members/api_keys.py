"""The point-of-sale API's door: store keys (authentication), a rate limit per key, and idempotent POSTs.

Every point-of-sale view derives from PosAPIView. A POST sent with an `Idempotency-Key` header is
recorded with the first response it got (status and body); a retry with the same key from the same
store gets that response again, whatever happened since; the same key with another body is refused
(422). The key is looked up before any business check, and two requests with one key at the same
instant take turns on the record's unique index, so the second one replays the first.
"""

import datetime
import functools

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import connection, transaction
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView
from rest_framework_api_key.permissions import KeyParser

from loyalty.core import rows
from loyalty.core.api import application_error_response, error_response
from loyalty.core.exceptions import ApplicationError
from loyalty.core.idempotency import fingerprint, key_reused_error
from members.models import APIRequest, Store, StoreAPIKey

# A key's last use is written at most this often, not on every request.
LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)


class StoreAPIKeyAuthentication(BaseAuthentication):
    """`Authorization: Api-Key <prefix>.<secret>`; request.auth is the StoreAPIKey (with its store)."""

    keyword = KeyParser.keyword

    def authenticate(self, request):
        key = KeyParser().get(request)
        if not key:
            return None
        api_key = _key_with_store(prefix=key.partition(".")[0])
        if api_key is None or not api_key.is_valid(key):
            raise exceptions.AuthenticationFailed(_("This API key is not valid. Check the key the portal showed you."))
        if api_key.revoked:
            raise exceptions.AuthenticationFailed(_("This API key was revoked. Ask program staff for a new one."))
        if api_key.has_expired:
            raise exceptions.AuthenticationFailed(_("This API key has expired. Ask program staff for a new one."))
        if not api_key.store.is_active:
            raise exceptions.AuthenticationFailed(_("The store of this API key is closed."))
        now = timezone.now()
        if api_key.last_used_at is None or api_key.last_used_at < now - LAST_USED_RESOLUTION:
            StoreAPIKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        return (AnonymousUser(), api_key)

    def authenticate_header(self, request):
        return self.keyword


@functools.cache
def _key_with_store_sql() -> str:
    quote = connection.ops.quote_name
    return (
        f"SELECT {rows.select_list(StoreAPIKey, 'k')}, {rows.select_list(Store, 's')}"
        f" FROM {quote(StoreAPIKey._meta.db_table)} k JOIN {quote(Store._meta.db_table)} s ON s.id = k.store_id"
        " WHERE k.prefix = %s"
    )


def _key_with_store(*, prefix: str) -> StoreAPIKey | None:
    """The key with this (unique) prefix and its store: `select_related("store").filter(prefix=…)`, written
    once because every API request, the floor's too, starts with it (bench/RESULTS.md)."""
    with connection.cursor() as cursor:
        cursor.execute(_key_with_store_sql(), [prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    api_key, store = rows.load_joined(row, StoreAPIKey, Store)
    api_key.store = store
    return api_key


class StoreAPIKeyScheme(OpenApiAuthenticationExtension):
    target_class = StoreAPIKeyAuthentication
    name = "StoreApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`: a store's key, shown once when it is created.",
        }


class HasStoreKey(BasePermission):
    message = _("Send a store's API key: Authorization: Api-Key <key>.")

    def has_permission(self, request, view):
        return isinstance(request.auth, StoreAPIKey)


class StoreKeyThrottle(SimpleRateThrottle):
    """Requests per minute per key (REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["pos_key"], API_RATE_LIMIT)."""

    scope = "pos_key"

    def get_rate(self):
        return settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][self.scope]

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, StoreAPIKey):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}


class PosAPIView(APIView):
    """A point-of-sale endpoint: called with a store's API key, and rate-limited per key."""

    # (A docstring here is the description of every endpoint without its own, in the public schema.)

    authentication_classes = [StoreAPIKeyAuthentication]
    permission_classes = [HasStoreKey]
    throttle_classes = [StoreKeyThrottle]

    @property
    def store(self):
        return self.request.auth.store

    def validated(self, serializer_class) -> dict:
        """The request's body checked by `serializer_class`; a ValidationError (400, every field named) if not."""
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


def _claim(store, key: str, digest: str) -> int | None:
    """Record the key (its answer still blank) and return the record's id; None when the key is already
    recorded. On a concurrent twin, the unique index makes this wait until the first one commits. One
    statement, no savepoint: every keyed POST pays it."""
    record = APIRequest(store=store, key=key, fingerprint=digest, status_code=0, body="")
    return record.pk if rows.insert_unless_taken(record) else None


class IdempotentPostMixin:
    """POST through the view's `perform_post(request, *args, **kwargs) -> Response`, recorded under the
    request's Idempotency-Key (required unless `idempotency_required = False`)."""

    idempotency_required = True

    def post(self, request, *args, **kwargs):
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            if self.idempotency_required:
                return error_response(
                    "idempotency_key_required",
                    _(
                        "Send an Idempotency-Key header (1 to 128 characters, new for each new request) so a retry never posts twice."
                    ),
                )
            return self._respond(request, args, kwargs)
        if len(key) > 128:
            return error_response(
                "idempotency_key_required", _("The Idempotency-Key header is longer than 128 characters.")
            )
        digest = fingerprint(method=request.method, path=request.path, body=request.data)
        with transaction.atomic():
            record_id = _claim(self.store, key, digest)
            if record_id is None:  # a retry (or its twin, which waited for the first to commit)
                record = APIRequest.objects.get(store=self.store, key=key)
                if record.fingerprint != digest:
                    return application_error_response(key_reused_error())
                return HttpResponse(
                    record.body,
                    status=record.status_code,
                    content_type="application/json",
                    headers={"Idempotent-Replayed": "true"},
                )
            response = self._respond(request, args, kwargs)
            if response.status_code >= 500:
                transaction.set_rollback(True)  # a failure is not an answer: the retry runs again
                return response
            # Stored as the client receives it (the API renders JSON only), so a replay is byte for byte the same.
            body = JSONRenderer().render(response.data).decode()
            rows.update(APIRequest(pk=record_id, status_code=response.status_code, body=body), ("status_code", "body"))
            return response

    def _respond(self, request, args, kwargs) -> Response:
        try:
            return self.perform_post(request, *args, **kwargs)
        except ApplicationError as error:
            return application_error_response(error)
