"""The floor of bench/api.py: the least a point-of-sale earn can cost through this stack.

POST /bench/floor/ goes through the same DRF view class as the real endpoints (store key
authentication, the per-key rate limit, JSON parsing), then locks one account row and inserts one
row, in one transaction. Everything the real purchase endpoint does beyond that (validation, the
idempotency record, the engine's rules, the ledger entries, the answer) is what the ratio measures.
Served only by the bench's settings (bench/floor_settings.py), never by the product.

POST /bench/skeleton/ (bench/api.py --skeleton) writes the rows a purchase writes, each by its own
statement as the engine writes them, in raw SQL: the idempotency record claimed, the till's account found
and locked, the purchase, one ledger lot, the account's counters, the recorded answer. It has no rules,
tiers, expiry dates, validation, replays or serializers, so it is a lower bound for the statements, not a
purchase. Between the floor and the real endpoint, it says how much of the gap is the statements
themselves and how much the Python around them. POST /bench/skeleton-pair/ (also with --skeleton) makes the
same writes in two statements, with data-modifying CTEs: the fewest round trips such a purchase can make.
"""

import datetime
import json

from django.db import connection, transaction
from django.urls import include, path
from rest_framework.response import Response

from members.api_keys import PosAPIView

CREATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY, account_id bigint NOT NULL,"
    " points integer NOT NULL, receipt_number text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
)


class FloorView(PosAPIView):
    def post(self, request):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT a.id FROM loyalty_account a JOIN members_member m ON m.id = a.member_id"
                " WHERE m.member_no = %s FOR UPDATE OF a",
                [request.data["member"]],
            )
            account_id = cursor.fetchone()[0]
            cursor.execute(
                "INSERT INTO bench_floor (account_id, points, receipt_number) VALUES (%s, %s, %s) RETURNING id",
                [account_id, int(float(request.data["amount"])), request.data["receipt_number"]],
            )
            row_id = cursor.fetchone()[0]
        return Response({"id": row_id}, status=201)


class SkeletonView(PosAPIView):
    def post(self, request):
        data, store_id = request.data, request.auth.store_id
        key = request.headers["Idempotency-Key"]
        now = datetime.datetime.now(datetime.UTC)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO members_apirequest (store_id, key, fingerprint, status_code, body, created_at)"
                " VALUES (%s, %s, '', 0, '', %s) ON CONFLICT (store_id, key) DO NOTHING RETURNING id",
                [store_id, key, now],
            )
            request_id = cursor.fetchone()[0]
            cursor.execute(
                "SELECT a.id, a.program_id FROM loyalty_account a JOIN members_member m ON m.id = a.member_id"
                " JOIN loyalty_program_stores ps ON ps.program_id = a.program_id"
                " WHERE m.member_no = %s AND ps.store_id = %s FOR UPDATE OF a",
                [data["member"], store_id],
            )
            account_id, program_id = cursor.fetchone()
            points = int(float(data["amount"]))
            cursor.execute(
                "INSERT INTO loyalty_purchase (program_id, account_id, store_id, receipt_number, amount, currency,"
                " lines, returned_amount, occurred_at, idempotency_key, fingerprint, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, 0, %s, %s, '', %s) RETURNING id",
                [program_id, account_id, store_id, data["receipt_number"], data["amount"], data["currency"],
                 json.dumps(data.get("lines", [])), data["occurred_at"], f"pos:{store_id}:{key}", now],
            )  # fmt: skip
            purchase_id = cursor.fetchone()[0]
            cursor.execute(
                "INSERT INTO loyalty_ledgerentry (program_id, account_id, kind, points, qualifying_points, remaining,"
                " available_at, is_available, occurred_at, reason, purchase_id, store_id, idempotency_key,"
                " fingerprint, created_at) VALUES (%s, %s, 'earn', %s, %s, %s, %s, false, %s, %s, %s, %s, %s, '', %s)",
                [program_id, account_id, points, points, points, now + datetime.timedelta(days=14),
                 data["occurred_at"], f"{points} pts", purchase_id, store_id, f"~pos:{store_id}:{key}#0", now],
            )  # fmt: skip
            cursor.execute(
                "UPDATE loyalty_account SET pending = pending + %s, lifetime_earned = lifetime_earned + %s,"
                " last_activity_at = %s WHERE id = %s",
                [points, points, now, account_id],
            )
            body = {"id": purchase_id, "points": points}
            cursor.execute(
                "UPDATE members_apirequest SET status_code = 201, body = %s WHERE id = %s",
                [json.dumps(body), request_id],
            )
        return Response(body, status=201)


class PairSkeletonView(PosAPIView):
    """The skeleton's writes in two statements (data-modifying CTEs): the key's claim with the account's
    lock, then the purchase, its lot, the account's counters and the recorded answer. The fewest round
    trips a purchase that records all of them can make."""

    def post(self, request):
        data, store_id = request.data, request.auth.store_id
        key = request.headers["Idempotency-Key"]
        now = datetime.datetime.now(datetime.UTC)
        points = int(float(data["amount"]))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "WITH claim AS (INSERT INTO members_apirequest (store_id, key, fingerprint, status_code, body,"
                " created_at) VALUES (%s, %s, '', 0, '', %s) ON CONFLICT (store_id, key) DO NOTHING RETURNING id)"
                " SELECT (SELECT id FROM claim), a.id, a.program_id FROM loyalty_account a"
                " JOIN members_member m ON m.id = a.member_id"
                " JOIN loyalty_program_stores ps ON ps.program_id = a.program_id"
                " WHERE m.member_no = %s AND ps.store_id = %s FOR UPDATE OF a",
                [store_id, key, now, data["member"], store_id],
            )
            request_id, account_id, program_id = cursor.fetchone()
            cursor.execute(
                "WITH p AS (INSERT INTO loyalty_purchase (program_id, account_id, store_id, receipt_number, amount,"
                " currency, lines, returned_amount, occurred_at, idempotency_key, fingerprint, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, 0, %s, %s, '', %s) RETURNING id),"
                " e AS (INSERT INTO loyalty_ledgerentry (program_id, account_id, kind, points, qualifying_points,"
                " remaining, available_at, is_available, occurred_at, reason, purchase_id, store_id, idempotency_key,"
                " fingerprint, created_at) SELECT %s, %s, 'earn', %s, %s, %s, %s, false, %s, %s, p.id, %s, %s, '', %s"
                " FROM p),"
                " acc AS (UPDATE loyalty_account SET pending = pending + %s, lifetime_earned = lifetime_earned + %s,"
                " last_activity_at = %s WHERE id = %s)"
                " UPDATE members_apirequest SET status_code = 201,"
                " body = json_build_object('id', (SELECT id FROM p), 'points', %s)::text WHERE id = %s RETURNING body",
                [program_id, account_id, store_id, data["receipt_number"], data["amount"], data["currency"],
                 json.dumps(data.get("lines", [])), data["occurred_at"], f"pos:{store_id}:{key}", now,
                 program_id, account_id, points, points, points, now + datetime.timedelta(days=14),
                 data["occurred_at"], f"{points} pts", store_id, f"~pos:{store_id}:{key}#0", now,
                 points, points, now, account_id, points, request_id],
            )  # fmt: skip
            body = json.loads(cursor.fetchone()[0])
        return Response(body, status=201)


urlpatterns = [
    path("bench/floor/", FloorView.as_view()),
    path("bench/skeleton/", SkeletonView.as_view()),
    path("bench/skeleton-pair/", PairSkeletonView.as_view()),
    path("", include("loyalty.urls")),
]
