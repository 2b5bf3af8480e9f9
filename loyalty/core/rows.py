"""Statements for the money paths' hottest rows, built once per process from the models' metadata.

At a till's rate the ORM spent most of a purchase's CPU building the same SQL again on every request
(compiling joins, ordering, select lists) and setting up the objects it reads (bench/RESULTS.md). These
helpers write the same SQL the ORM would, from the same field definitions (columns, converters, pre_save),
so a new field or a renamed column needs no edit here; what they return are ordinary model instances.

- `select_list(model, alias)` and `load_joined(row, *models)`: models' columns in a hand-written SELECT,
  and the instances back from the row, through the fields' own converters.
- `insert(rows)`: one INSERT for several new rows of one model, pks set on them.
- `update(row, fields)`: an UPDATE of the named fields of one row by pk.
- `joined_after_lock(row, *fields)`: related rows a locked read joined, read again where the lock waited.
- `insert_unless_taken(row)`: an INSERT that yields to a row already holding one of its unique keys.
"""

import functools

from django.db import DatabaseError, connection
from django.db.models import Field, Model
from django.db.models.fields import AutoFieldMixin


@functools.cache
def _fields(model: type[Model]) -> tuple[Field, ...]:
    return tuple(model._meta.concrete_fields)


@functools.cache
def select_list(model: type[Model], alias: str) -> str:
    """`alias."col", …` for every concrete field of `model`, in the order `load_joined` expects."""
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(field.column)}" for field in _fields(model))


@functools.cache
def _loader(model: type[Model]) -> tuple[list[str], list[tuple[int, list]], int]:
    fields = _fields(model)
    converters = []
    for index, field in enumerate(fields):
        column = field.get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
        if found:
            converters.append((index, [(converter, column) for converter in found]))
    return [field.attname for field in fields], converters, fields.index(model._meta.pk)


def load_joined(row, *models: type[Model]) -> list[Model | None]:
    """The instances of `models` from a row whose columns are their `select_list`s in that order, as the
    ORM would have read them; None for a model whose columns an outer join left empty."""
    found, start = [], 0
    for model in models:
        attnames, converters, pk_index = _loader(model)
        values = list(row[start : start + len(attnames)])
        start += len(attnames)
        if values[pk_index] is None:
            found.append(None)
            continue
        for index, steps in converters:
            for converter, column in steps:
                values[index] = converter(values[index], column, connection)
        found.append(model.from_db(connection.alias, attnames, values))
    return found


@functools.cache
def _written(model: type[Model]) -> tuple[Field, ...]:
    """The columns an INSERT names: all but an auto-incremented pk. A model whose rows the database
    completes itself (generated columns, database defaults) is refused rather than written wrongly."""
    fields = []
    for field in _fields(model):
        if getattr(field, "generated", False) or field.has_db_default():
            raise TypeError(f"loyalty.core.rows cannot insert {model.__name__}.{field.name}: use the ORM")
        if not (field.primary_key and isinstance(field, AutoFieldMixin)):
            fields.append(field)
    return tuple(fields)


@functools.cache
def _insert_sql(model: type[Model], rows: int, on_conflict_do_nothing: bool) -> str:
    opts, quote = model._meta, connection.ops.quote_name
    fields = _written(model)
    one = f"({', '.join(['%s'] * len(fields))})"
    return (
        f"INSERT INTO {quote(opts.db_table)} ({', '.join(quote(field.column) for field in fields)})"
        f" VALUES {', '.join([one] * rows)}"
        f"{' ON CONFLICT DO NOTHING' if on_conflict_do_nothing else ''} RETURNING {quote(opts.pk.column)}"
    )


def _insert_values(row: Model) -> list:
    return [field.get_db_prep_save(field.pre_save(row, True), connection) for field in _written(type(row))]


def _inserted(row: Model, pk) -> None:
    row.pk = pk
    row._state.adding, row._state.db = False, connection.alias


def insert(rows: list[Model]) -> list[Model]:
    """Insert new `rows` of one model in one statement (as bulk_create does) and set their pks."""
    if not rows:
        return rows
    params = [value for row in rows for value in _insert_values(row)]
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(type(rows[0]), len(rows), False), params)
        pks = [pk for (pk,) in cursor.fetchall()]
    for row, pk in zip(rows, pks, strict=True):  # PostgreSQL returns a VALUES list's rows in its order
        _inserted(row, pk)
    return rows


def insert_unless_taken(row: Model) -> bool:
    """Insert a new `row` unless one of its table's unique keys already holds its values: one statement
    (`INSERT … ON CONFLICT DO NOTHING`), no savepoint. Sets its pk and returns True when inserted. A
    concurrent twin waits on the unique index until the first commits, then is not inserted."""
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(type(row), 1, True), _insert_values(row))
        inserted = cursor.fetchone()
    if inserted is None:
        return False
    _inserted(row, inserted[0])
    return True


@functools.cache
def _update_sql(model: type[Model], names: tuple[str, ...]) -> tuple[str, tuple[Field, ...]]:
    opts, quote = model._meta, connection.ops.quote_name
    fields = tuple(opts.get_field(name) for name in names)
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    return f"UPDATE {quote(opts.db_table)} SET {assignments} WHERE {quote(opts.pk.column)} = %s", fields


def update(row: Model, fields: tuple[str, ...]) -> None:
    """Write the named fields of a saved `row` (as save(update_fields=…) does, without signals)."""
    sql, targets = _update_sql(type(row), fields)
    params = [field.get_db_prep_save(getattr(row, field.attname), connection) for field in targets]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, row.pk])
        if cursor.rowcount != 1:  # as save(update_fields=…) refuses a row that is gone
            raise DatabaseError(f"{type(row).__name__} {row.pk} was not updated: no such row")


def joined_after_lock(row: Model, *names: str) -> Model:
    """`row`, locked with related rows outer-joined (select_related on a nullable foreign key, or a LEFT
    JOIN of ours), with those related rows read again where the lock had to wait. PostgreSQL re-checks the
    locked row's new version against the rows it had joined; one changed meanwhile no longer matches, and
    the outer join then gives none (or, for us, a row of nulls). One query per such field, only then."""
    for name in names:
        field = type(row)._meta.get_field(name)
        related_pk = getattr(row, field.attname)
        if related_pk is None:
            continue
        joined = field.get_cached_value(row, default=None)
        if joined is None or joined.pk != related_pk:
            setattr(row, name, field.related_model._base_manager.get(pk=related_pk))
    return row
