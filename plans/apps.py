from django.apps import AppConfig


class PlansConfig(AppConfig):
    """Targets, source-server inventory, protection groups and recovery plans."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "plans"
    verbose_name = "Plans and inventory"
