"""The set-based part of a legacy import: rows land in a staging table (COPY on PostgreSQL, batched
INSERTs on SQLite); one statement joins them to the members, accounts and opening balances already
there and writes the import's plan (every flag the checks and the writes need) to a second table; each
check is then one query on the plan, and each write one INSERT … SELECT or UPDATE … FROM. The same SQL
runs on both databases, apart from how new ids are drawn.

Neither table is updated row by row afterwards: a million-row UPDATE of a table rewrites every row."""

import datetime
import time
from collections.abc import Iterable
from contextlib import contextmanager

from django.db import DatabaseError, connection, transaction
from django.utils.translation import gettext as _

from loyalty.core.exceptions import ApplicationError
from loyalty.legacy.rows import STAGE_FIELDS
from loyalty.models import Account, LedgerEntry, Tier, TierChange
from members.models import ConsentRecord, Member, Store, User

STAGE = "legacy_import_stage"
PLAN = "legacy_import_plan"
NUMBERS = "legacy_import_numbers"
SQLITE_BATCH = 2_000
# Hash joins and aggregates over a million rows in memory, for the import's transaction only.
WORK_MEM = "128MB"
# The stage and the plan (a few hundred MB at a million rows) mostly in the session's own buffers, not sent
# through files page by page as with the default 8 MB; allocated only as the tables grow.
TEMP_BUFFERS = "256MB"

# The staging table: the row's fields (text unless said otherwise).
FIELD_TYPES = {
    "row_no": "integer NOT NULL",
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
# The tables an import writes: members and accounts with ids drawn in the plan, the rest when inserted
# (their new rows are told by an id mark, Stage.id_marks).
MARKED_TABLES = (T_CONSENT, T_TIER_CHANGE, T_LEDGER)
WRITTEN_TABLES = (T_MEMBER, T_ACCOUNT, *MARKED_TABLES)


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def db_value(value):
    """Datetimes as the database backend stores them (SQLite keeps UTC text; raw SQL skips the ORM's
    conversion, so it is done here)."""
    if isinstance(value, datetime.datetime) and not is_postgresql():
        return connection.ops.adapt_datetimefield_value(value)
    return value


class Stage:
    """The staging and plan tables of one import, on the import's own database connection."""

    def __init__(self):
        self.cursor = connection.cursor()
        self.timings: dict[str, float] = {}  # phase -> seconds, for the command's -v 2 and bench/import.py

    def execute(self, sql: str, params: Iterable = (), *, phase: str = "") -> int:
        with self.timed(phase):
            self.cursor.execute(sql, [db_value(param) for param in params])
        return self.cursor.rowcount

    def rows(self, sql: str, params: Iterable = ()) -> list[tuple]:
        self.cursor.execute(sql, [db_value(param) for param in params])
        return self.cursor.fetchall()

    @contextmanager
    def timed(self, phase: str):
        """Adds the block's time to `phase` (nothing without one)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            if phase:
                self.timings[phase] = self.timings.get(phase, 0.0) + time.perf_counter() - started

    # -- the tables ----------------------------------------------------------------------------------

    def create(self) -> None:
        if is_postgresql():
            try:
                # refused once the session has used temporary tables (a worker's later job): in a savepoint,
                # so the refusal leaves an enclosing transaction usable
                with transaction.atomic():
                    self.execute(f"SET temp_buffers = '{TEMP_BUFFERS}'")
            except DatabaseError:
                pass  # that session keeps its buffers: slower checks, the same result
        self.drop()
        definition = ", ".join(f"{name} {kind}" for name, kind in STAGE_TYPES.items())
        self.execute(f"CREATE TEMPORARY TABLE {STAGE} ({definition})")
        self.execute(f"CREATE TEMPORARY TABLE {NUMBERS} (row_no integer PRIMARY KEY, member_no varchar(32))")

    def drop(self) -> None:
        for table in (STAGE, PLAN, NUMBERS):
            self.execute(f"DROP TABLE IF EXISTS {table}")

    def tune(self) -> None:
        """Inside the import's transaction (reset at its end): memory for its joins and aggregates, and no JIT,
        whose compiling each of the import's statements would pay once for a single run."""
        if is_postgresql():
            self.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
            self.execute("SET LOCAL jit = off")

    # -- references checked as a set ---------------------------------------------------------------------

    def skip_row_triggers(self) -> bool:
        """Until `restore_row_triggers`, PostgreSQL fires no per-row trigger (`session_replication_role =
        replica`, as `pg_restore --disable-triggers` does). The foreign keys of the rows an import writes are
        then checked by `check_references`, one query per table, instead of a trigger call per key per row at
        commit (about 13 per member: 45 of a million-row import's 134 s). Taken only when the written tables
        have nothing else the setting would turn off (`_nothing_but_foreign_keys`): NOT NULL, CHECK and
        non-deferrable unique keys stay enforced. Needs a superuser or, from PostgreSQL 15, `GRANT SET ON
        PARAMETER session_replication_role`; without it the triggers run as before, with the same result."""
        if not is_postgresql() or not self._nothing_but_foreign_keys():
            return False
        try:
            with transaction.atomic():  # a refusal rolls back this savepoint only
                self.execute("SET LOCAL session_replication_role = replica")
        except DatabaseError:
            return False
        return True

    def restore_row_triggers(self) -> None:
        """Back to the usual triggers for whatever the caller's transaction does next (SET LOCAL would last
        until its end when the import runs inside a caller's atomic block). The import's own writes queued no
        trigger events, so none fire now."""
        self.execute("SET LOCAL session_replication_role = origin")

    def _nothing_but_foreign_keys(self) -> bool:
        """Whether the setting would turn off only the foreign-key checks `check_references` makes, on the
        tables an import writes: no trigger of ours that fires on INSERT or UPDATE (the ledger's append-only
        trigger fires on DELETE), no deferrable unique or exclusion constraint (enforced by a trigger), and only
        MATCH SIMPLE foreign keys (the semantics check_references reproduces)."""
        tables = list(WRITTEN_TABLES)
        insert_or_update = 4 | 16  # pg_trigger.tgtype bits TRIGGER_TYPE_INSERT and TRIGGER_TYPE_UPDATE
        (count,) = self.rows(
            """
            SELECT (SELECT COUNT(*) FROM pg_trigger
                    WHERE tgrelid = ANY(%s::regclass[]) AND NOT tgisinternal AND tgtype & %s <> 0)
                 + (SELECT COUNT(*) FROM pg_constraint
                    WHERE conrelid = ANY(%s::regclass[])
                      AND ((contype IN ('u', 'x') AND condeferrable) OR (contype = 'f' AND confmatchtype <> 's')))
            """,
            [tables, insert_or_update, tables],
        )[0]
        return count == 0

    def id_marks(self) -> dict[str, int]:
        """For the tables whose new rows take their ids when inserted, an id drawn from the table's sequence
        now: this session's later ids are above it whatever the sequence's cache, so the rows above it once
        the import has written include all of the import's (and perhaps others', checked for nothing)."""
        marks = {}
        for table in MARKED_TABLES:
            (marks[table],) = self.rows("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [table])[0]
        return marks

    def lock_referenced(self, *, program_id: int, user_id: int | None) -> None:
        """What the skipped foreign-key triggers would have locked (FOR KEY SHARE: nobody deletes them or
        changes their key until the import commits, while reads, earns and edits go on): the stores, tiers and
        user the new rows name, and the members that existed before and get an account or a consent record.
        The program is locked already; accounts that existed before are updated, which locks them."""
        self.execute(
            f"SELECT 1 FROM {T_STORE} WHERE id IN (SELECT store_id FROM {PLAN}) ORDER BY id FOR KEY SHARE",
            phase="writes: referenced rows locked",
        )
        self.execute(
            f"SELECT 1 FROM {T_TIER} WHERE program_id = %s ORDER BY id FOR KEY SHARE",
            [program_id],
            phase="writes: referenced rows locked",
        )
        if user_id is not None:
            self.execute(
                f"SELECT 1 FROM {User._meta.db_table} WHERE id = %s FOR KEY SHARE",
                [user_id],
                phase="writes: referenced rows locked",
            )
        self.execute(
            f"""
            SELECT 1 FROM {T_MEMBER} WHERE id IN (
              SELECT member_id FROM {PLAN} WHERE NOT new_member AND (new_account OR consent_changed)
            ) ORDER BY id FOR KEY SHARE
            """,
            phase="writes: referenced rows locked",
        )

    def _foreign_keys(self, table: str) -> list[tuple[str, list[str], list[str]]]:
        """(referenced table, columns, referenced columns) of each foreign key of `table`, as the database
        has them (Django's, and the ledger's composite key on account and program)."""
        return self.rows(
            """
            SELECT c.confrelid::regclass::text,
              ARRAY(SELECT quote_ident(a.attname) FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i)::text[],
              ARRAY(SELECT quote_ident(a.attname) FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
                    JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i)::text[]
            FROM pg_constraint c WHERE c.conrelid = %s::regclass AND c.contype = 'f' ORDER BY c.conname
            """,
            [table],
        )

    def check_references(self, marks: dict[str, int]) -> None:
        """Every foreign key of every row the import inserted or updated, checked as a set (one query per
        table, as `ALTER TABLE … VALIDATE CONSTRAINT` does), in place of the triggers `skip_row_triggers`
        turned off. A dangling reference (a row deleted by someone else before `lock_referenced` could lock
        it) raises ApplicationError, and the import's transaction rolls back."""
        written = {
            T_MEMBER: f"t.id IN (SELECT member_id FROM {PLAN} WHERE new_member OR member_changed OR consent_changed)",
            T_ACCOUNT: f"t.id IN (SELECT account_id FROM {PLAN} WHERE new_account OR tier_raised OR post_balance)",
            **{table: f"t.id > {int(mark)}" for table, mark in marks.items()},
        }
        for table, rows in written.items():
            dangling = []
            for referenced, columns, keys in self._foreign_keys(table):
                present = " AND ".join(f"t.{column} IS NOT NULL" for column in columns)  # MATCH SIMPLE
                match = " AND ".join(f"r.{key} = t.{column}" for column, key in zip(columns, keys, strict=True))
                dangling.append(f"({present} AND NOT EXISTS (SELECT 1 FROM {referenced} r WHERE {match}))")
            with self.timed("writes: references checked as a set"):
                found = self.rows(f"SELECT t.id FROM {table} t WHERE {rows} AND ({' OR '.join(dangling)}) LIMIT 1")
            if found:
                raise ApplicationError(
                    _(
                        "A store, tier or member that the file names was deleted while it was being imported, so"
                        " nothing was imported. Check the file again and import it once more."
                    ),
                    code="reference_deleted",
                    extra={"table": table, "id": found[0][0]},
                )

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
        """Statistics for the planner (autovacuum never visits temporary tables)."""
        self.execute(f"ANALYZE {STAGE}", phase="checks: statistics of the stage")

    # -- checks on the file alone ----------------------------------------------------------------------

    def duplicates_in_file(self, column: str) -> list[tuple]:
        """Rows whose member number, email (in any case) or phone an earlier row of the file already has."""
        key = "lower({})" if column == "email" else "{}"
        return self.rows(
            f"""
            SELECT s.row_no, s.{column}, first.row_no
            FROM {STAGE} s
            JOIN (SELECT {key.format(column)} AS value, MIN(row_no) AS row_no FROM {STAGE}
                  WHERE {column} IS NOT NULL GROUP BY {key.format(column)} HAVING COUNT(*) > 1) first
              ON {key.format("s." + column)} = first.value
            WHERE s.row_no > first.row_no
            ORDER BY s.row_no
            """
        )

    # -- the plan: the file against the portal, in one statement ----------------------------------------

    def match_by_email(self) -> None:
        """Rows without a member number are the active member with their email, if there is one."""
        self.execute(
            f"""
            UPDATE {STAGE} SET member_no = m.member_no
            FROM {T_MEMBER} m
            WHERE {STAGE}.member_no IS NULL AND {STAGE}.email IS NOT NULL
              AND m.status = 'active' AND m.email <> '' AND lower(m.email) = lower({STAGE}.email)
            """,
            phase="checks: rows without a number matched by email",
        )

    def _new_ids(self, model, matched: str) -> str:
        """The SQL for the id of a row the import will insert: the table's own sequence on PostgreSQL
        (enrolments elsewhere draw from it meanwhile); after the highest id on SQLite, whose writers take
        turns."""
        table = model._meta.db_table
        if is_postgresql():
            (sequence,) = self.rows("SELECT pg_get_serial_sequence(%s, 'id')", [table])[0]
            return f"nextval('{sequence}')"
        return (
            f"(SELECT COALESCE(MAX(id), 0) FROM {table})"
            f" + ROW_NUMBER() OVER (PARTITION BY {matched} IS NULL ORDER BY row_no)"
        )

    def make_plan(self, *, program_id: int, default_language: str, draw_ids: bool) -> None:
        """One row per staged row: the member and account it is (or will be: with `draw_ids`, new ones get
        their ids now, in the file's order), what changes, and the opening balance posted before."""
        changed = " OR ".join(f"COALESCE(s.{column}, m.{column}) <> m.{column}" for column in MEMBER_COLUMNS)
        if draw_ids:
            member_id = f"COALESCE(x.matched_member_id, {self._new_ids(Member, 'matched_member_id')})"
            account_id = f"COALESCE(x.matched_account_id, {self._new_ids(Account, 'matched_account_id')})"
        else:  # a dry run or a file with errors: nothing will be inserted, no sequence is looked up
            member_id, account_id = "x.matched_member_id", "x.matched_account_id"
        self.execute(
            f"""
            CREATE TEMPORARY TABLE {PLAN} AS
            SELECT x.*,
              {member_id} AS member_id,
              {account_id} AS account_id,
              COALESCE(x.balance > 0 AND x.prior_points IS NULL, FALSE) AS post_balance
            FROM (
              SELECT s.*,
                m.id AS matched_member_id, m.status AS member_status, m.id IS NULL AS new_member,
                COALESCE(m.id IS NOT NULL AND ({changed}
                  OR (s.store_id IS NOT NULL AND m.home_store_id IS DISTINCT FROM s.store_id)
                  OR (s.enrolled_at IS NOT NULL AND m.enrolled_at <> s.enrolled_at)), FALSE) AS member_changed,
                COALESCE(m.id IS NOT NULL AND s.consent IS NOT NULL AND s.consent <> m.marketing_consent, FALSE)
                  AS consent_changed,
                COALESCE(s.language, m.language, %s) AS member_language,
                a.id AS matched_account_id, a.tier_id AS old_tier_id, a.id IS NULL AS new_account,
                -- an account the portal opened before takes the legacy tier only when it ranks higher
                COALESCE(a.id IS NOT NULL AND new_tier.rank > old_tier.rank, FALSE) AS tier_raised,
                CASE WHEN a.id IS NOT NULL AND s.member_no IS NOT NULL THEN (
                  SELECT e.points FROM {T_LEDGER} e
                  WHERE e.program_id = %s AND e.idempotency_key = '{OPENING_KEY_PREFIX}' || s.member_no
                ) END AS prior_points
              FROM {STAGE} s
              LEFT JOIN {T_MEMBER} m ON m.member_no = s.member_no
              LEFT JOIN {T_ACCOUNT} a ON a.member_id = m.id AND a.program_id = %s
              LEFT JOIN {T_TIER} new_tier ON new_tier.id = s.tier_id
              LEFT JOIN {T_TIER} old_tier ON old_tier.id = a.tier_id
            ) x
            ORDER BY x.row_no
            """,
            [default_language, program_id, program_id],
            phase="checks: the plan (one statement)",
        )
        self.execute(f"ANALYZE {PLAN}", phase="checks: statistics of the plan")

    # -- checks on the plan: each yields rows for an error message --------------------------------------

    def inactive_members(self) -> list[tuple]:
        return self.rows(
            f"""
            SELECT row_no, member_no, member_status FROM {PLAN}
            WHERE member_status IS NOT NULL AND member_status <> 'active' ORDER BY row_no
            """
        )

    def taken_by_others(self, column: str) -> list[tuple]:
        """Emails and phones an active member other than the row's own already uses."""
        if column == "email":
            condition = "m.email <> '' AND lower(m.email) = lower(s.email)"
        else:
            condition = "m.phone <> '' AND m.phone = s.phone"
        return self.rows(
            f"""
            SELECT s.row_no, s.{column}, m.member_no FROM {PLAN} s
            JOIN {T_MEMBER} m ON {condition} AND m.status = 'active'
            WHERE s.{column} IS NOT NULL AND (s.matched_member_id IS NULL OR m.id <> s.matched_member_id)
            ORDER BY s.row_no
            """
        )

    def nameless_new_members(self) -> list[tuple]:
        return self.rows(
            f"""
            SELECT row_no, '' FROM {PLAN}
            WHERE new_member AND first_name IS NULL AND last_name IS NULL AND company IS NULL ORDER BY row_no
            """
        )

    def opening_balance_conflicts(self) -> list[tuple]:
        return self.rows(
            f"""
            SELECT row_no, balance, prior_points FROM {PLAN}
            WHERE prior_points IS NOT NULL AND balance IS NOT NULL AND balance <> prior_points ORDER BY row_no
            """
        )

    # -- writes ----------------------------------------------------------------------------------------

    def rows_needing_numbers(self) -> list[int]:
        return [row for (row,) in self.rows(f"SELECT row_no FROM {PLAN} WHERE new_member AND member_no IS NULL")]

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
        self.execute(f"UPDATE {PLAN} SET member_no = n.member_no FROM {NUMBERS} n WHERE n.row_no = {PLAN}.row_no")
        return taken

    def insert_members(self, *, now, user_id) -> int:
        created = self.execute(
            f"""
            INSERT INTO {T_MEMBER} (
              id, member_no, first_name, last_name, company, email, phone, street, postal_code, city, country,
              region, member_type, language, birth_date, home_store_id, user_id, status, enrolment_channel,
              enrolled_by_id, enrolled_at_store_id, marketing_consent, marketing_consent_at,
              marketing_consent_channel, referral_code, referred_by_id, enrolled_at, closed_at)
            SELECT
              p.member_id, p.member_no, COALESCE(p.first_name, ''), COALESCE(p.last_name, ''),
              COALESCE(p.company, ''), COALESCE(p.email, ''), COALESCE(p.phone, ''), COALESCE(p.street, ''),
              COALESCE(p.postal_code, ''), COALESCE(p.city, ''), '', COALESCE(p.region, st.region, ''),
              COALESCE(p.member_type, 'consumer'), p.member_language, NULL, p.store_id, NULL, 'active',
              'import', %s, p.store_id, COALESCE(p.consent, FALSE), %s,
              'import', NULL, NULL, COALESCE(p.enrolled_at, %s), NULL
            FROM {PLAN} p LEFT JOIN {T_STORE} st ON st.id = p.store_id
            WHERE p.new_member
            """,
            [user_id, now, now],
            phase="writes: members",
        )
        self.execute(
            f"""
            INSERT INTO {T_CONSENT} (member_id, granted, channel, recorded_at, recorded_by_id, store_id)
            SELECT member_id, COALESCE(consent, FALSE), 'import', %s, %s, NULL FROM {PLAN} WHERE new_member
            """,
            [now, user_id],
            phase="writes: consent records",
        )
        return created

    def update_members(self, *, now, user_id) -> int:
        sets = ", ".join(f"{column} = COALESCE(p.{column}, {T_MEMBER}.{column})" for column in MEMBER_COLUMNS)
        updated = self.execute(
            f"""
            UPDATE {T_MEMBER} SET {sets},
              home_store_id = COALESCE(p.store_id, {T_MEMBER}.home_store_id),
              enrolled_at = COALESCE(p.enrolled_at, {T_MEMBER}.enrolled_at)
            FROM {PLAN} p WHERE p.member_changed AND {T_MEMBER}.id = p.member_id
            """,
            phase="writes: members updated",
        )
        self.execute(
            f"""
            UPDATE {T_MEMBER} SET marketing_consent = p.consent, marketing_consent_at = %s,
              marketing_consent_channel = 'import'
            FROM {PLAN} p WHERE p.consent_changed AND {T_MEMBER}.id = p.member_id
            """,
            [now],
            phase="writes: members updated",
        )
        self.execute(
            f"""
            INSERT INTO {T_CONSENT} (member_id, granted, channel, recorded_at, recorded_by_id, store_id)
            SELECT member_id, consent, 'import', %s, %s, NULL FROM {PLAN} WHERE consent_changed ORDER BY row_no
            """,
            [now, user_id],
            phase="writes: members updated",
        )
        return updated

    def insert_accounts(self, *, program_id, entry_tier_id, now, window_start, review_at, user_id) -> int:
        tier = "COALESCE(p.tier_id, %s)"
        tier_since = "COALESCE(p.tier_since, p.enrolled_at, %s)"
        created = self.execute(
            f"""
            INSERT INTO {T_ACCOUNT} (
              id, member_id, program_id, balance, pending, tier_id, tier_since, tier_window_start, tier_review_at,
              lifetime_earned, lifetime_redeemed, lifetime_expired, last_activity_at, expiry_warned_at,
              expiry_warned_through, enrolled_at, enrolled_by_id, enrolled_at_store_id)
            SELECT
              p.account_id, p.member_id, %s, CASE WHEN p.post_balance THEN p.balance ELSE 0 END, 0,
              {tier}, {tier_since},
              CASE WHEN {tier} = %s THEN NULL ELSE %s END,
              CASE WHEN {tier} = %s THEN NULL ELSE %s END,
              CASE WHEN p.post_balance THEN p.balance ELSE 0 END, 0, 0, %s, NULL,
              NULL, COALESCE(p.enrolled_at, %s), %s, p.store_id
            FROM {PLAN} p WHERE p.new_account
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
            phase="writes: accounts",
        )
        self.execute(
            f"""
            INSERT INTO {T_TIER_CHANGE} (account_id, from_tier_id, to_tier_id, reason, changed_at)
            SELECT p.account_id, NULL, {tier}, 'import', {tier_since} FROM {PLAN} p WHERE p.new_account
            """,
            [entry_tier_id, now],
            phase="writes: tier changes",
        )
        return created

    def raise_tiers(self, *, entry_tier_id, now, window_start, review_at) -> int:
        self.execute(
            f"""
            INSERT INTO {T_TIER_CHANGE} (account_id, from_tier_id, to_tier_id, reason, changed_at)
            SELECT account_id, old_tier_id, tier_id, 'import', COALESCE(tier_since, %s)
            FROM {PLAN} WHERE tier_raised ORDER BY row_no
            """,
            [now],
            phase="writes: tiers raised",
        )
        return self.execute(
            f"""
            UPDATE {T_ACCOUNT} SET tier_id = p.tier_id, tier_since = COALESCE(p.tier_since, %s),
              tier_window_start = CASE WHEN p.tier_id = %s THEN NULL ELSE %s END,
              tier_review_at = CASE WHEN p.tier_id = %s THEN NULL ELSE %s END
            FROM {PLAN} p WHERE p.tier_raised AND {T_ACCOUNT}.id = p.account_id
            """,
            [now, entry_tier_id, window_start, entry_tier_id, review_at],
            phase="writes: tiers raised",
        )

    def post_opening_balances(self, *, program_id, now, policy_expiry, reasons: dict[str, str], user_id) -> int:
        languages = list(reasons)
        reason = "CASE " + " ".join("WHEN p.member_language = %s THEN %s" for _code in languages) + " ELSE %s END"
        reason_params = [value for code in languages for value in (code, reasons[code])]
        reason_params.append(reasons[languages[0]])
        posted = self.execute(
            f"""
            INSERT INTO {T_LEDGER} (
              program_id, account_id, kind, points, qualifying_points, remaining, expires_at, available_at,
              is_available, occurred_at, reason, rule_id, purchase_id, activity_id, reverses_id, source_type_id,
              source_id, store_id, idempotency_key, fingerprint, created_by_id, created_at)
            SELECT
              %s, p.account_id, 'opening_balance', p.balance, 0, p.balance, COALESCE(p.expires_at, %s), %s,
              TRUE, %s, {reason}, NULL, NULL, NULL, NULL, NULL,
              NULL, NULL, '{OPENING_KEY_PREFIX}' || p.member_no, '', %s, %s
            FROM {PLAN} p
            WHERE p.post_balance
            """,
            [program_id, policy_expiry, now, now, *reason_params, user_id, now],
            phase="writes: opening balances (ledger)",
        )
        self.execute(
            f"""
            UPDATE {T_ACCOUNT} SET balance = {T_ACCOUNT}.balance + p.balance,
              lifetime_earned = {T_ACCOUNT}.lifetime_earned + p.balance
            FROM {PLAN} p WHERE p.post_balance AND NOT p.new_account AND {T_ACCOUNT}.id = p.account_id
            """,
            phase="writes: balances of existing accounts",
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
        row = self.rows(f"SELECT {sums}, SUM(CASE WHEN post_balance THEN balance ELSE 0 END) FROM {PLAN}")[0]
        return {name: int(value or 0) for name, value in zip([*figures, "points_posted"], row, strict=True)}
