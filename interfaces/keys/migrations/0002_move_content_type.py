from django.db import migrations

MODEL = "apikey"


def move(apps, schema_editor, source="interfaces", destination="keys"):
    """The model's content type follows it, so the permissions granted on it and the admin's
    history of its rows stay with it (Django would otherwise make a fresh content type)."""
    content_types = apps.get_model("contenttypes", "ContentType").objects.using(schema_editor.connection.alias)
    if not content_types.filter(app_label=destination, model=MODEL).exists():
        content_types.filter(app_label=source, model=MODEL).update(app_label=destination)


def move_back(apps, schema_editor):
    move(apps, schema_editor, source="keys", destination="interfaces")


class Migration(migrations.Migration):
    dependencies = [
        ("keys", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(move, move_back)]
