"""`manage.py setup_schedules`: create or update the django-q2 schedules."""

from django.core.management.base import BaseCommand

from drsorch.schedules import schedules_setup


class Command(BaseCommand):
    help = (
        "Create or update the django-q2 schedules (execution poller, unattended drills, inventory sync). "
        "Safe to run again."
    )

    def handle(self, *args, **options):
        for schedule, created in schedules_setup():
            verb = "created" if created else "up to date"
            self.stdout.write(f"{schedule.name}: {schedule.func} every {schedule.minutes} min ({verb})")
