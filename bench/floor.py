"""The floor of bench/api.py: the least a point-of-sale earn can cost through this stack.

POST /bench/floor/ goes through the same DRF view class as the real endpoints (store key
authentication, the per-key rate limit, JSON parsing), then locks one account row and inserts one
row, in one transaction. Everything the real purchase endpoint does beyond that (validation, the
idempotency record, the engine's rules, the ledger entries, the answer) is what the ratio measures.
Served only by the bench's settings (bench/floor_settings.py), never by the product.
"""

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


urlpatterns = [
    path("bench/floor/", FloorView.as_view()),
    path("", include("loyalty.urls")),
]
