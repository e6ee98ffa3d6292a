"""`manage.py bootstrap`: the first-run setup of `make run`.

A project entry point: like drsorch/urls.py it composes the apps (the sandbox demo is
plans.demo), while the rest of drsorch/ imports no app.
"""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from drsorch.schedules import schedules_setup
from plans.demo import sandbox_seed
from plans.models import Target


class Command(BaseCommand):
    help = (
        "First-run setup used by `make run`: creates the superuser 'admin' (password from "
        "DRSORCH_ADMIN_PASSWORD, else generated and printed once), seeds the sandbox demo when the "
        "database has no target yet, and registers the django-q2 schedules. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--no-seed", action="store_true", help="Do not seed the sandbox demo.")
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="URL to print.")

    def handle(self, *args, **options):
        password_line = self._ensure_admin()
        if not options["no_seed"] and not Target.objects.exists():
            self._seed_demo()
        schedules_setup()
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"drsorch is starting at {options['url']}"))
        self.stdout.write(password_line)
        self.stdout.write("Stop the web server and the worker with Ctrl-C.")

    def _ensure_admin(self):
        User = get_user_model()
        if User.objects.filter(username="admin").exists():
            if settings.DRSORCH_ADMIN_PASSWORD:
                return "Log in as admin with the password in DRSORCH_ADMIN_PASSWORD."
            return "Log in as admin with the password printed on the first run (reset: manage.py changepassword admin)."
        password = settings.DRSORCH_ADMIN_PASSWORD or secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", "admin@localhost", password)
        if settings.DRSORCH_ADMIN_PASSWORD:
            return "Created superuser admin with the password in DRSORCH_ADMIN_PASSWORD."
        return self.style.WARNING(f"Created superuser admin, password: {password}  (shown only this once)")

    def _seed_demo(self):
        result = sandbox_seed()
        self.stdout.write(f"Seeded the sandbox demo: {result}")
