"""The set-based part of a legacy import: rows land in a staging table (COPY on PostgreSQL, batched
INSERTs on SQLite), every check that needs the whole file or the database is one query, and the writes
are a handful of INSERT … SELECT / UPDATE … FROM statements. The same SQL runs on both databases."""

import datetime
from collections.abc import Iterable
from contextlib import contextmanager

from django.db import connection

from loyalty.legacy.rows import STAGE_FIELDS
from loyalty.models import Account, LedgerEntry, Tier, TierChange
from members.models import ConsentRecord, Member, Store

STAGE = "legacy_import_stage"
NUMBERS = "legacy_import_numbers"
SQLITE_BATCH = 2_000

# The staging table: the row's fields (text unless said otherwise), then the checks' working columns.
FIELD_TYPES = {
    "row_no": "integer PRIMARY KEY",
    "member_no": "varchar(32)",
    "store_id": "bigint",
    "enrolled_at": "timestamp with time zone",
    "balance": "bigint",
    "tier_id": "bigint",
    "tier_since": "timestamp with time zone",
    "expires_at": "timestamp with time zone",
    "consent": "boolean",
}
STAGE_TYPES = {name: FIELD_TYPES.get(name, "text") for name in STAGE_FIELDS}
# Filled in by the checks, read by the writes.
WORK_COLUMNS = {
    "email_key": "text",
    "member_id": "bigint",
    "member_active": "boolean",
    "new_member": "boolean NOT NULL DEFAULT FALSE",
    "member_changed": "boolean NOT NULL DEFAULT FALSE",
    "consent_changed": "boolean NOT NULL DEFAULT FALSE",
    "account_id": "bigint",
    "new_account": "boolean NOT NULL DEFAULT FALSE",
    "old_tier_id": "bigint",
    "tier_raised": "boolean NOT NULL DEFAULT FALSE",
    "prior_points": "bigint",
    "post_balance": "boolean NOT NULL DEFAULT FALSE",
}

# Member columns an import sets; a blank cell (NULL in the stage) keeps what the member has.
MEMBER_COLUMNS = (
    "first_name",
    "last_name",
    "company",
    "email",
    "phone",
    "street",
    "postal_code",
    "city",
    "region",
    "language",
    "member_type",
)

T_MEMBER = Member._meta.db_table
T_STORE = Store._meta.db_table
T_CONSENT = ConsentRecord._meta.db_table
T_ACCOUNT = Account._meta.db_table
T_TIER = Tier._meta.db_table
T_TIER_CHANGE = TierChange._meta.db_table
T_LEDGER = LedgerEntry._meta.db_table

OPENING_KEY_PREFIX = "~opening:"


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def db_value(value):
    """Datetimes as the database backend stores them (SQLite keeps UTC text; raw SQL skips the ORM's
    conversion, so it is done here)."""
    if isinstance(value, datetime.datetime) and not is_postgresql():
        return connection.ops.adapt_datetimefield_value(value)
    return value


class Stage:
    """The staging table of one import, on the import's own database connection."""

    def __init__(self):
        self.cursor = connection.cursor()

    def execute(self, sql: str, params: Iterable = ()) -> int:
        self.cursor.execute(sql, [db_value(param) for param in params])
        return self.cursor.rowcount

    def rows(self, sql: str, params: Iterable = ()) -> list[tuple]:
        self.cursor.execute(sql, [db_value(param) for param in params])
        return self.cursor.fetchall()

    # -- the table -----------------------------------------------------------------------------------

    def create(self) -> None:
        self.drop()
        columns = {**STAGE_TYPES, **WORK_COLUMNS}
        definition = ", ".join(f"{name} {kind}" for name, kind in columns.items())
        self.execute(f"CREATE TEMPORARY TABLE {STAGE} ({definition})")
        self.execute(f"CREATE TEMPORARY TABLE {NUMBERS} (row_no integer PRIMARY KEY, member_no varchar(32))")

    def drop(self) -> None:
        self.execute(f"DROP TABLE IF EXISTS {STAGE}")
        self.execute(f"DROP TABLE IF EXISTS {NUMBERS}")

    @contextmanager
    def writer(self, table: str = STAGE, columns: tuple[str, ...] = STAGE_FIELDS):
        """`write(row)` for each row, in constant memory."""
        if is_postgresql():
            with self.cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                yield copy.write_row
            return
        batch: list[tuple] = []
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"

        def write(row):
            batch.append(tuple(db_value(value) for value in row))
            if len(batch) >= SQLITE_BATCH:
                self.cursor.executemany(sql, batch)
                batch.clear()

        yield write
        if batch:
            self.cursor.executemany(sql, batch)

    def prepare(self) -> None:
        """Keys for matching, then statistics (autovacuum never visits temporary tables)."""
        self.execute(f"UPDATE {STAGE} SET email_key = lower(email) WHERE email IS NOT NULL")
        self.execute(f"ANALYZE {STAGE}")

    # -- checks: each yields (row, canonical column, value, message parameters) ----------------------

    def duplicates_in_file(self, column: str) -> list[tuple]:
        """Rows whose member number, email or phone an earlier row of the file already has."""
        key = "email_key" if column == "email" else column
        return self.rows(
            f"""
            SELECT s.row_no, s.{column}, first.row_no
            FROM {STAGE} s
            JOIN (SELECT {key} AS value, MIN(row_no) AS row_no FROM {STAGE}
                  WHERE {key} IS NOT NULL GROUP BY {key} HAVING COUNT(*) > 1) first
              ON s.{key} = first.value
            WHERE s.row_no > first.row_no
            ORDER BY s.row_no
            """
        )

    def match_members(self) -> None:
        """By member number; rows without one, by the email of an active member."""
        self.execute(
            f"""
            UPDATE {STAGE} SET member_id = m.id, member_active = (m.status = 'active')
            FROM {T_MEMBER} m WHERE m.member_no = {STAGE}.member_no
            """
        )
        self.execute(
            f"""
            UPDATE {STAGE} SET member_id = m.id, member_active = TRUE, member_no = m.member_no
            FROM {T_MEMBER} m
            WHERE {STAGE}.member_no IS NULL AND {STAGE}.email_key IS NOT NULL
              AND m.status = 'active' AND m.email <> '' AND lower(m.email) = {STAGE}.email_key
            """
        )
        self.execute(f"UPDATE {STAGE} SET new_member = TRUE WHERE member_id IS NULL")

    def inactive_members(self) -> list[tuple]:
        return self.rows(
            f"""
            SELECT s.row_no, s.member_no, m.status FROM {STAGE} s JOIN {T_MEMBER} m ON m.id = s.member_id
            WHERE NOT s.member_active ORDER BY s.row_no
            """
        )

    def taken_by_others(self, column: str) -> list[tuple]:
        """Emails and phones an active member other than the row's own already uses."""
        if column == "email":
            condition = "m.email <> '' AND lower(m.email) = s.email_key"
        else:
            condition = "m.phone <> '' AND m.phone = s.phone"
        return self.rows(
            f"""
            SELECT s.row_no, s.{column}, m.member_no FROM {STAGE} s
            JOIN {T_MEMBER} m ON {condition} AND m.status = 'active'
            WHERE s.{column} IS NOT NULL AND (s.member_id IS NULL OR m.id <> s.member_id)
            ORDER BY s.row_no
            """
        )

    def nameless_new_members(self) -> list[tuple]:
        return self.rows(
            f"""
            SELECT row_no, '' FROM {STAGE}
            WHERE new_member AND first_name IS NULL AND last_name IS NULL AND company IS NULL ORDER BY row_no
            """
        )

    def match_accounts(self, program_id: int) -> None:
        self.execute(
            f"""
            UPDATE {STAGE} SET account_id = a.id, old_tier_id = a.tier_id
            FROM {T_ACCOUNT} a WHERE a.program_id = %s AND a.member_id = {STAGE}.member_id
            """,
            [program_id],
        )
        self.execute(f"UPDATE {STAGE} SET new_account = TRUE WHERE account_id IS NULL")
        # An account the portal opened before takes the legacy tier only when it ranks higher.
        self.execute(
            f"""
            UPDATE {STAGE} SET tier_raised = TRUE FROM {T_TIER} new_tier, {T_TIER} old_tier
            WHERE NOT {STAGE}.new_account AND new_tier.id = {STAGE}.tier_id AND old_tier.id = {STAGE}.old_tier_id
              AND new_tier.rank > old_tier.rank
            """
        )

    def match_opening_balances(self, program_id: int) -> None:
        self.execute(
            f"""
            UPDATE {STAGE} SET prior_points = e.points
            FROM {T_LEDGER} e
            WHERE e.program_id = %s AND e.idempotency_key = '{OPENING_KEY_PREFIX}' || {STAGE}.member_no
              AND {STAGE}.member_no IS NOT NULL AND NOT {STAGE}.new_account
            """,
            [program_id],
        )
        self.execute(f"UPDATE {STAGE} SET post_balance = TRUE WHERE balance > 0 AND prior_points IS NULL")

    def opening_balance_conflicts(self) -> list[tuple]:
        return self.rows(
            f"""
            SELECT row_no, balance, prior_points FROM {STAGE}
            WHERE prior_points IS NOT NULL AND balance IS NOT NULL AND balance <> prior_points ORDER BY row_no
            """
        )

    def mark_member_changes(self) -> None:
        changed = " OR ".join(f"COALESCE({STAGE}.{column}, m.{column}) <> m.{column}" for column in MEMBER_COLUMNS)
        self.execute(
            f"""
            UPDATE {STAGE} SET member_changed = TRUE FROM {T_MEMBER} m
            WHERE NOT {STAGE}.new_member AND m.id = {STAGE}.member_id
              AND ({changed}
                   OR ({STAGE}.store_id IS NOT NULL AND m.home_store_id IS DISTINCT FROM {STAGE}.store_id)
                   OR ({STAGE}.enrolled_at IS NOT NULL AND m.enrolled_at <> {STAGE}.enrolled_at))
            """
        )
        self.execute(
            f"""
            UPDATE {STAGE} SET consent_changed = TRUE FROM {T_MEMBER} m
            WHERE NOT {STAGE}.new_member AND m.id = {STAGE}.member_id
              AND {STAGE}.consent IS NOT NULL AND {STAGE}.consent <> m.marketing_consent
            """
        )

    # -- writes ----------------------------------------------------------------------------------------

    def rows_needing_numbers(self) -> list[int]:
        return [row for (row,) in self.rows(f"SELECT row_no FROM {STAGE} WHERE new_member AND member_no IS NULL")]

    def give_numbers(self, numbers: dict[int, str]) -> list[int]:
        """Stores issued numbers; returns the rows whose number an existing member turned out to hold."""
        self.execute(f"DELETE FROM {NUMBERS}")
        with self.writer(NUMBERS, ("row_no", "member_no")) as write:
            for row, number in numbers.items():
                write((row, number))
        taken = [
            row
            for (row,) in self.rows(
                f"DELETE FROM {NUMBERS} WHERE member_no IN (SELECT member_no FROM {T_MEMBER}) RETURNING row_no"
            )
        ]
        self.execute(f"UPDATE {STAGE} SET member_no = n.member_no FROM {NUMBERS} n WHERE n.row_no = {STAGE}.row_no")
        return taken

    def insert_members(self, *, now, user_id, default_language: str) -> int:
        created = self.execute(
            f"""
            INSERT INTO {T_MEMBER} (
              member_no, first_name, last_name, company, email, phone, street, postal_code, city, country,
              region, member_type, language, birth_date, home_store_id, user_id, status, enrolment_channel,
              enrolled_by_id, enrolled_at_store_id, marketing_consent, marketing_consent_at,
              marketing_consent_channel, referral_code, referred_by_id, enrolled_at, closed_at)
            SELECT
              s.member_no, COALESCE(s.first_name, ''), COALESCE(s.last_name, ''), COALESCE(s.company, ''),
              COALESCE(s.email, ''), COALESCE(s.phone, ''), COALESCE(s.street, ''), COALESCE(s.postal_code, ''),
              COALESCE(s.city, ''), '', COALESCE(s.region, st.region, ''), COALESCE(s.member_type, 'consumer'),
              COALESCE(s.language, %s), NULL, s.store_id, NULL, 'active', 'import',
              %s, s.store_id, COALESCE(s.consent, FALSE), %s,
              'import', NULL, NULL, COALESCE(s.enrolled_at, %s), NULL
            FROM {STAGE} s LEFT JOIN {T_STORE} st ON st.id = s.store_id
            WHERE s.new_member
            ORDER BY s.row_no
            """,
            [default_language, user_id, now, now],
        )
        self.execute(
            f"""
            UPDATE {STAGE} SET member_id = m.id FROM {T_MEMBER} m
            WHERE {STAGE}.new_member AND m.member_no = {STAGE}.member_no
            """
        )
        self.execute(
            f"""
            INSERT INTO {T_CONSENT} (member_id, granted, channel, recorded_at, recorded_by_id, store_id)
            SELECT member_id, COALESCE(consent, FALSE), 'import', %s, %s, NULL FROM {STAGE} WHERE new_member
            ORDER BY row_no
            """,
            [now, user_id],
        )
        return created

    def update_members(self, *, now, user_id) -> int:
        sets = ", ".join(f"{column} = COALESCE(s.{column}, {T_MEMBER}.{column})" for column in MEMBER_COLUMNS)
        updated = self.execute(
            f"""
            UPDATE {T_MEMBER} SET {sets},
              home_store_id = COALESCE(s.store_id, {T_MEMBER}.home_store_id),
              enrolled_at = COALESCE(s.enrolled_at, {T_MEMBER}.enrolled_at)
            FROM {STAGE} s WHERE s.member_changed AND {T_MEMBER}.id = s.member_id
            """
        )
        self.execute(
            f"""
            UPDATE {T_MEMBER} SET marketing_consent = s.consent, marketing_consent_at = %s,
              marketing_consent_channel = 'import'
            FROM {STAGE} s WHERE s.consent_changed AND {T_MEMBER}.id = s.member_id
            """,
            [now],
        )
        self.execute(
            f"""
            INSERT INTO {T_CONSENT} (member_id, granted, channel, recorded_at, recorded_by_id, store_id)
            SELECT member_id, consent, 'import', %s, %s, NULL FROM {STAGE} WHERE consent_changed ORDER BY row_no
            """,
            [now, user_id],
        )
        return updated

    def insert_accounts(self, *, program_id, entry_tier_id, now, window_start, review_at, user_id) -> int:
        created = self.execute(
            f"""
            INSERT INTO {T_ACCOUNT} (
              member_id, program_id, balance, pending, tier_id, tier_since, tier_window_start, tier_review_at,
              lifetime_earned, lifetime_redeemed, lifetime_expired, last_activity_at, expiry_warned_at,
              expiry_warned_through, enrolled_at, enrolled_by_id, enrolled_at_store_id)
            SELECT
              s.member_id, %s, CASE WHEN s.post_balance THEN s.balance ELSE 0 END, 0,
              COALESCE(s.tier_id, %s), COALESCE(s.tier_since, s.enrolled_at, %s),
              CASE WHEN COALESCE(s.tier_id, %s) = %s THEN NULL ELSE %s END,
              CASE WHEN COALESCE(s.tier_id, %s) = %s THEN NULL ELSE %s END,
              CASE WHEN s.post_balance THEN s.balance ELSE 0 END, 0, 0, %s, NULL,
              NULL, COALESCE(s.enrolled_at, %s), %s, s.store_id
            FROM {STAGE} s WHERE s.new_account ORDER BY s.row_no
            """,
            [
                program_id,
                entry_tier_id,
                now,
                entry_tier_id,
                entry_tier_id,
                window_start,
                entry_tier_id,
                entry_tier_id,
                review_at,
                now,
                now,
                user_id,
            ],
        )
        self.execute(
            f"""
            UPDATE {STAGE} SET account_id = a.id FROM {T_ACCOUNT} a
            WHERE {STAGE}.new_account AND a.program_id = %s AND a.member_id = {STAGE}.member_id
            """,
            [program_id],
        )
        self.execute(
            f"""
            INSERT INTO {T_TIER_CHANGE} (account_id, from_tier_id, to_tier_id, reason, changed_at)
            SELECT s.account_id, NULL, a.tier_id, 'import', a.tier_since
            FROM {STAGE} s JOIN {T_ACCOUNT} a ON a.id = s.account_id WHERE s.new_account ORDER BY s.row_no
            """
        )
        return created

    def raise_tiers(self, *, entry_tier_id, now, window_start, review_at) -> int:
        self.execute(
            f"""
            INSERT INTO {T_TIER_CHANGE} (account_id, from_tier_id, to_tier_id, reason, changed_at)
            SELECT account_id, old_tier_id, tier_id, 'import', COALESCE(tier_since, %s)
            FROM {STAGE} WHERE tier_raised ORDER BY row_no
            """,
            [now],
        )
        return self.execute(
            f"""
            UPDATE {T_ACCOUNT} SET tier_id = s.tier_id, tier_since = COALESCE(s.tier_since, %s),
              tier_window_start = CASE WHEN s.tier_id = %s THEN NULL ELSE %s END,
              tier_review_at = CASE WHEN s.tier_id = %s THEN NULL ELSE %s END
            FROM {STAGE} s WHERE s.tier_raised AND {T_ACCOUNT}.id = s.account_id
            """,
            [now, entry_tier_id, window_start, entry_tier_id, review_at],
        )

    def post_opening_balances(self, *, program_id, now, policy_expiry, reasons: dict[str, str], user_id) -> int:
        languages = list(reasons)
        reason = "CASE " + " ".join("WHEN m.language = %s THEN %s" for _code in languages) + " ELSE %s END"
        reason_params = [value for code in languages for value in (code, reasons[code])]
        reason_params.append(reasons[languages[0]])
        posted = self.execute(
            f"""
            INSERT INTO {T_LEDGER} (
              program_id, account_id, kind, points, qualifying_points, remaining, expires_at, available_at,
              is_available, occurred_at, reason, rule_id, purchase_id, activity_id, reverses_id, source_type_id,
              source_id, store_id, idempotency_key, fingerprint, created_by_id, created_at)
            SELECT
              %s, s.account_id, 'opening_balance', s.balance, 0, s.balance, COALESCE(s.expires_at, %s), %s,
              TRUE, %s, {reason}, NULL, NULL, NULL, NULL, NULL,
              NULL, NULL, '{OPENING_KEY_PREFIX}' || s.member_no, '', %s, %s
            FROM {STAGE} s JOIN {T_MEMBER} m ON m.id = s.member_id
            WHERE s.post_balance ORDER BY s.row_no
            """,
            [program_id, policy_expiry, now, now, *reason_params, user_id, now],
        )
        self.execute(
            f"""
            UPDATE {T_ACCOUNT} SET balance = {T_ACCOUNT}.balance + s.balance,
              lifetime_earned = {T_ACCOUNT}.lifetime_earned + s.balance
            FROM {STAGE} s WHERE s.post_balance AND NOT s.new_account AND {T_ACCOUNT}.id = s.account_id
            """
        )
        return posted

    # -- what happened (or would) ----------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """What the import did (or, in a dry run, would do): ImportReport's figures."""
        figures = {
            "members_created": "new_member",
            "members_updated": "member_changed OR consent_changed",
            "accounts_opened": "new_account",
            "tiers_raised": "tier_raised",
            "balances_posted": "post_balance",
        }
        sums = ", ".join(f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)" for condition in figures.values())
        row = self.rows(f"SELECT {sums}, SUM(CASE WHEN post_balance THEN balance ELSE 0 END) FROM {STAGE}")[0]
        return {name: int(value or 0) for name, value in zip([*figures, "points_posted"], row, strict=True)}
