
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('interfaces', '0004_remoteagent_auth_secret'),
        ('keys', '0001_initial'),
        ('connectors', '0001_initial'),
    ]

    # APIKey moved to interfaces.keys and RemoteAgent to interfaces.connectors, tables and all.
    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(
                    name='APIKey',
                ),
                migrations.DeleteModel(
                    name='RemoteAgent',
                ),
            ],
        ),
    ]
