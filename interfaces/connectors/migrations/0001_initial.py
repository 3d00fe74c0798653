
import django.core.validators
import re
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("interfaces", "0004_remoteagent_auth_secret"),
    ]

    # The model moved here from the interfaces app; its table (and its rows) stayed where they
    # were, so only Django's picture of it moves: no SQL runs.
    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
            migrations.CreateModel(
                name='RemoteAgent',
                fields=[
                    ('name', models.CharField(help_text="The tool's name (what agents list in their tools, or the model of an a2a agent).", max_length=64, primary_key=True, serialize=False, validators=[django.core.validators.RegexValidator(re.compile('^[A-Za-z][A-Za-z0-9_-]{0,63}$'), "A tool name: a letter, then letters, digits, '_' or '-' (at most 64 characters).", code='invalid_tool_name')])),
                    ('url', models.URLField(help_text="The agent's A2A base URL, or its card's URL (ending in .json).", max_length=500, verbose_name='URL')),
                    ('description', models.TextField(blank=True, help_text="What the model is told the tool does. Empty: the card's description.")),
                    ('enabled', models.BooleanField(default=True, help_text='A disabled remote agent is no tool at all.')),
                    ('auth_secret', models.CharField(blank=True, help_text='A reference to the token, never the token itself: env:NAME, where the environment variable NAME starts with ASTEROS_SECRET_ (or is listed in ASTEROS_SECRET_ENV). Empty: no auth.', max_length=110, verbose_name='token reference')),
                    ('auth_header', models.CharField(default='Authorization', help_text='The header that carries the token: "Authorization" sends "Bearer <token>", any other header (e.g. X-API-Key) the token as it is.', max_length=100)),
                    ('binding', models.CharField(blank=True, choices=[('', 'As the card prefers (JSON-RPC, then HTTP+JSON)'), ('JSONRPC', 'JSON-RPC'), ('HTTP+JSON', 'HTTP+JSON')], default='', max_length=16)),
                    ('timeout', models.FloatField(default=300.0, help_text='Seconds a call may take, its whole stream included.')),
                    ('card_name', models.CharField(blank=True, editable=False, max_length=200)),
                    ('card_description', models.TextField(blank=True, editable=False)),
                    ('card_checked_at', models.DateTimeField(blank=True, editable=False, null=True)),
                    ('card_error', models.TextField(blank=True, editable=False)),
                    ('created_at', models.DateTimeField(auto_now_add=True)),
                    ('updated_at', models.DateTimeField(auto_now=True)),
                ],
                options={
                    'verbose_name': 'remote A2A agent',
                    'db_table': 'interfaces_remoteagent',
                    'ordering': ('name',),
                },
            ),
            ],
        ),
    ]
