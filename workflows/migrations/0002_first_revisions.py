from django.db import migrations

WORKFLOW_FIELDS = ("name", "description", "enabled", "definition")


def first_revisions(apps, schema_editor):
    """Revision 1 of every workflow saved before revisions existed."""
    Workflow = apps.get_model("workflows", "Workflow")
    Revision = apps.get_model("cosmos", "Revision")
    for workflow in Workflow.objects.all():
        definition = {name: getattr(workflow, name) for name in WORKFLOW_FIELDS}
        Revision.objects.create(
            resource="workflow", target=workflow.id, number=1, author="migration", definition=definition
        )


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0001_initial"),
        ("cosmos", "0010_run_revision"),
    ]

    operations = [migrations.RunPython(first_revisions, migrations.RunPython.noop)]
