from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """The simulated DRS: state that stands for AWS, kept in its own database connection."""

    name = "drsorch.sandbox"
    label = "sandbox"
    verbose_name = "Sandbox (simulated DRS)"
    default_auto_field = "django.db.models.BigAutoField"
