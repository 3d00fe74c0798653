from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Workflows"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cosmos.kinds import register_kind
        from cosmos.services import revisions

        from . import services
        from .executor import execute_workflow
        from .models import WORKFLOW_KIND, Workflow

        register_kind(
            WORKFLOW_KIND, execute_workflow, services.check_runnable, target_model=Workflow, description="workflow"
        )
        revisions.register(WORKFLOW_KIND, Workflow, services.workflow_definition, services.apply_workflow_definition)
