"""A remote agent's token is a reference (``env:NAME``), not a bare variable name."""

from django.db import migrations, models


def to_references(apps, schema_editor):
    RemoteAgent = apps.get_model("interfaces", "RemoteAgent")
    for row in RemoteAgent.objects.exclude(auth_secret="").only("pk", "auth_secret"):
        if not row.auth_secret.startswith("env:"):
            RemoteAgent.objects.filter(pk=row.pk).update(auth_secret=f"env:{row.auth_secret}")


def to_names(apps, schema_editor):
    RemoteAgent = apps.get_model("interfaces", "RemoteAgent")
    for row in RemoteAgent.objects.filter(auth_secret__startswith="env:").only("pk", "auth_secret"):
        RemoteAgent.objects.filter(pk=row.pk).update(auth_secret=row.auth_secret[len("env:") :])


class Migration(migrations.Migration):
    dependencies = [("interfaces", "0003_remoteagent")]

    operations = [
        migrations.RenameField(model_name="remoteagent", old_name="auth_env", new_name="auth_secret"),
        migrations.AlterField(
            model_name="remoteagent",
            name="auth_secret",
            field=models.CharField(
                blank=True,
                help_text="A reference to the token, never the token itself: env:NAME, where the environment "
                "variable NAME starts with ASTEROS_SECRET_ (or is listed in ASTEROS_SECRET_ENV). Empty: no auth.",
                max_length=110,
                verbose_name="token reference",
            ),
        ),
        migrations.RunPython(to_references, to_names),
    ]
