"""Insert many rows of a sandbox model at once, with less work per row than bulk_create.

StartRecovery writes about three rows per server. bulk_create builds a model instance per row
and prepares every value through the query compiler, which cost more than the rest of the
call; here a row is a dict of column values and only values the database cannot take as they
are (datetimes, JSON) are prepared, by their field, exactly as the ORM prepares them.
"""

import functools

from django.db import connections, models

from .routers import SANDBOX_DB

# Fields whose values (str, int, bool, None, a related pk) reach the database unchanged.
PLAIN_FIELDS = (models.CharField, models.TextField, models.IntegerField, models.BooleanField, models.ForeignKey)


def _preparer(field, connection):
    """How a value of `field` becomes a query parameter (None: as it is)."""
    if isinstance(field, PLAIN_FIELDS):
        return None
    if isinstance(field, models.DateTimeField):
        # The sandbox writes aware datetimes only: skip the field's checks, keep its adaptation.
        return connection.ops.adapt_datetimefield_value
    return functools.partial(field.get_db_prep_save, connection=connection)


def insert_rows(model, rows):
    """INSERT `rows` (dicts with the same keys: field names or attnames such as job_id) into
    `model`'s table through the sandbox connection, in one executemany; returns nothing (read
    generated pks back by a unique column if needed)."""
    if not rows:
        return
    connection = connections[SANDBOX_DB]
    names = list(rows[0])
    fields = [model._meta.get_field(name) for name in names]
    preparers = [_preparer(field, connection) for field in fields]
    params = [
        [row[name] if prepare is None else prepare(row[name]) for name, prepare in zip(names, preparers, strict=True)]
        for row in rows
    ]
    quote = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        quote(model._meta.db_table), ", ".join(quote(field.column) for field in fields),
        ", ".join(["%s"] * len(fields)),
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
