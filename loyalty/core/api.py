"""What every API view shares: one error format, stable error codes with their HTTP status, pagination.

Every refusal reads `{"error": {"code": ..., "message": ..., "fields": {...}}}`: a service's
ApplicationError, a serializer's validation errors, authentication, permission, throttling and
parse errors alike. Bad input never becomes a 500.
"""

import math

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from loyalty.core.exceptions import ApplicationError

# Codes whose HTTP status is not 422 (a well-formed request a business rule refused).
STATUS_BY_CODE = {
    "invalid": status.HTTP_400_BAD_REQUEST,
    "invalid_json": status.HTTP_400_BAD_REQUEST,
    "idempotency_key_required": status.HTTP_400_BAD_REQUEST,
    "not_authenticated": status.HTTP_401_UNAUTHORIZED,
    "api_key_invalid": status.HTTP_401_UNAUTHORIZED,
    "permission_denied": status.HTTP_403_FORBIDDEN,
    "not_found": status.HTTP_404_NOT_FOUND,
    "member_not_found": status.HTTP_404_NOT_FOUND,
    "purchase_not_found": status.HTTP_404_NOT_FOUND,
    "reward_not_found": status.HTTP_404_NOT_FOUND,
    "voucher_not_found": status.HTTP_404_NOT_FOUND,
    "method_not_allowed": status.HTTP_405_METHOD_NOT_ALLOWED,
    "duplicate_receipt": status.HTTP_409_CONFLICT,
    "duplicate_member": status.HTTP_409_CONFLICT,
    "voucher_already_redeemed": status.HTTP_409_CONFLICT,
    "unsupported_media_type": status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    "rate_limited": status.HTTP_429_TOO_MANY_REQUESTS,
}


def status_for(code: str) -> int:
    return STATUS_BY_CODE.get(code, status.HTTP_422_UNPROCESSABLE_ENTITY)


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": str(message), "fields": fields or {}}}


def error_response(code: str, message: str, fields: dict | None = None, *, headers=None) -> Response:
    return Response(error_body(code, message, fields), status=status_for(code), headers=headers)


def _flatten(detail) -> dict:
    """DRF's nested validation errors as {"field" or "lines.0.amount": ["message", ...]}."""
    fields = {}

    def walk(value, path):
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(inner, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list) and value and not all(isinstance(v, str) for v in value):
            for index, inner in enumerate(value):
                if inner:
                    walk(inner, f"{path}.{index}")
        else:
            fields.setdefault(path or "non_field_errors", []).extend(
                [str(v) for v in value] if isinstance(value, list) else [str(value)]
            )

    walk(detail, "")
    return fields


def application_error_response(error: ApplicationError) -> Response:
    fields = {}
    if error.extra.get("field"):
        fields[error.extra["field"]] = [error.message]
    return error_response(error.code, error.message, fields)


def exception_handler(exc, context):
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: every error in the one format."""
    if isinstance(exc, ApplicationError):
        return application_error_response(exc)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real server error: Django's 500 handling and logging
    headers = {k: v for k, v in response.headers.items() if k in {"Retry-After", "WWW-Authenticate", "Allow"}}
    if isinstance(exc, exceptions.ValidationError):
        return error_response(
            "invalid", _("Some fields are missing or wrong: see “fields”."), _flatten(exc.detail), headers=headers
        )
    if isinstance(exc, exceptions.Throttled):
        message = _("Too many requests for this API key: wait %(seconds)s seconds and try again.") % {
            "seconds": max(math.ceil(exc.wait or 0), 1)
        }
        return error_response("rate_limited", message, headers=headers)
    if isinstance(exc, exceptions.ParseError):
        return error_response("invalid_json", _("The body is not valid JSON: %(detail)s") % {"detail": exc.detail})
    code = {
        exceptions.NotAuthenticated: "not_authenticated",
        exceptions.AuthenticationFailed: "api_key_invalid",
        exceptions.PermissionDenied: "permission_denied",
        exceptions.NotFound: "not_found",
        exceptions.MethodNotAllowed: "method_not_allowed",
        exceptions.UnsupportedMediaType: "unsupported_media_type",
        exceptions.NotAcceptable: "not_acceptable",
    }.get(type(exc), getattr(exc, "default_code", "error"))
    response.data = error_body(code, exc.detail if isinstance(exc.detail, str) else str(exc.detail))
    return response


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def paginated(view, items, serializer_class) -> Response:
    """A page of `items` (a queryset or a list) as {"count", "next", "previous", "results"}."""
    paginator = Pagination()
    page = paginator.paginate_queryset(items, view.request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True, context={"view": view}).data)


def page_of(serializer_class) -> type[serializers.Serializer]:
    """The schema of a page of `serializer_class` (what `paginated` answers), for extend_schema."""
    name = serializer_class.__name__.removesuffix("Serializer")
    return type(
        f"Paginated{name}List",
        (serializers.Serializer,),
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )


# --- documentation --------------------------------------------------------------------------------


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. insufficient_points.")
    message = serializers.CharField(help_text="What went wrong and what to do, in the request's language.")
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()
