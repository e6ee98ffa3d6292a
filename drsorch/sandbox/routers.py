"""Send the simulated DRS's models to their own database connection.

The sandbox stands for AWS, which lives outside drsorch: what it records must be committed
at once and must survive a rollback or a crash of the caller. A separate connection ("the
`sandbox` alias") gives exactly that, whether it points at a sibling SQLite file or at the
same PostgreSQL database.
"""

from django.conf import settings

SANDBOX_APP_LABEL = "sandbox"
SANDBOX_DB = "sandbox"


class SandboxRouter:
    """Routes the `sandbox` app to the `sandbox` alias and everything else to `default`."""

    def db_for_read(self, model, **hints):
        return SANDBOX_DB if model._meta.app_label == SANDBOX_APP_LABEL else None

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):
        in_sandbox = {obj1._meta.app_label == SANDBOX_APP_LABEL, obj2._meta.app_label == SANDBOX_APP_LABEL}
        return None if len(in_sandbox) == 1 else False

    def allow_migrate(self, db, app_label, **hints):
        if app_label == SANDBOX_APP_LABEL:
            # When both aliases are one PostgreSQL database they share django_migrations,
            # so the tables must be created by whichever alias migrates first.
            return db == SANDBOX_DB or (db == "default" and settings.SANDBOX_SHARES_DEFAULT_DATABASE)
        return db == "default"
