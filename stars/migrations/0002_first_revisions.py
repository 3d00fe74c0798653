from django.db import migrations

STAR_FIELDS = ("name", "description", "enabled", "mode", "config")
MEMBER_FIELDS = ("name", "role", "order", "description", "notes")


def first_revisions(apps, schema_editor):
    """Revision 1 of every star saved before revisions existed."""
    Star = apps.get_model("stars", "Star")
    Membership = apps.get_model("stars", "Membership")
    Revision = apps.get_model("cosmos", "Revision")
    for star in Star.objects.all():
        members = Membership.objects.filter(star=star).order_by("order", "id")
        definition = {name: getattr(star, name) for name in STAR_FIELDS}
        definition["members"] = [
            {"agent": row.agent_id, **{name: getattr(row, name) for name in MEMBER_FIELDS}} for row in members
        ]
        Revision.objects.create(resource="star", target=star.id, number=1, author="migration", definition=definition)


class Migration(migrations.Migration):
    dependencies = [
        ("stars", "0001_initial"),
        ("cosmos", "0010_run_revision"),
    ]

    operations = [migrations.RunPython(first_revisions, migrations.RunPython.noop)]
