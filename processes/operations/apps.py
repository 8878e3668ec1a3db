from django.apps import AppConfig
from django.db.models.signals import post_migrate


class OperationsConfig(AppConfig):
    """Operator actions (DESIGN §6): Operation and BatchOperation rows, their services and tasks."""

    name = "processes.operations"
    label = "operations"
    verbose_name = "Operations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from processes.importer import projection
        from processes.operations import tasks  # noqa: F401 - registers the Celery tasks
        from processes.operations.confirm import confirm_applied_batch
        from processes.roles import ensure_role_groups

        # Confirmation inside the importer's transaction, after each batch's rows are written.
        projection.register_after_apply(confirm_applied_batch)

        # After every migrate (including the test database's), so the role groups always exist
        # and carry the permissions of every installed app.
        post_migrate.connect(ensure_role_groups, dispatch_uid="fleetflow-ensure-role-groups")
