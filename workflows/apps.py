from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Workflows"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cosmos.kinds import register_kind

        from .executor import execute_workflow
        from .models import WORKFLOW_KIND, Workflow
        from .services import check_runnable

        register_kind(WORKFLOW_KIND, execute_workflow, check_runnable, target_model=Workflow, description="workflow")
