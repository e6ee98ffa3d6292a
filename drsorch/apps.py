from django.apps import AppConfig


class DrsorchConfig(AppConfig):
    """The project's shared core (web mixins, roles, template tags) and its project-wide
    commands (bootstrap, setup_schedules, sandbox)."""

    name = "drsorch"
    label = "drsorch"
    verbose_name = "drsorch"
