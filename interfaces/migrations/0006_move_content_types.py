from django.db import migrations

# The models that moved out of this app, and the app that holds each now.
MOVED = {"apikey": "keys", "remoteagent": "connectors"}


def move(apps, schema_editor, backwards=False):
    """Each moved model's content type follows it, so the permissions granted on it and the
    admin's history of its rows stay with it (Django would otherwise make fresh ones)."""
    content_types = apps.get_model("contenttypes", "ContentType").objects.using(schema_editor.connection.alias)
    for model, label in MOVED.items():
        source, destination = ("interfaces", label) if not backwards else (label, "interfaces")
        if not content_types.filter(app_label=destination, model=model).exists():
            content_types.filter(app_label=source, model=model).update(app_label=destination)


def move_back(apps, schema_editor):
    move(apps, schema_editor, backwards=True)


class Migration(migrations.Migration):
    dependencies = [
        ("interfaces", "0005_delete_apikey_delete_remoteagent"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(move, move_back)]
