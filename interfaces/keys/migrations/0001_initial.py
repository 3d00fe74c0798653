
import django.core.validators
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
                name='APIKey',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('name', models.CharField(max_length=100)),
                    ('prefix', models.CharField(editable=False, max_length=16, unique=True)),
                    ('hashed_key', models.CharField(editable=False, max_length=64, unique=True)),
                    ('scopes', models.JSONField(default=list, help_text='Any of "read", "run", "admin".')),
                    ('resources', models.JSONField(blank=True, default=list, help_text='Optional: limit to resources like "agents:chat-agent"; empty = all.')),
                    ('revoked', models.BooleanField(default=False)),
                    ('requests_per_minute', models.PositiveIntegerField(blank=True, help_text='Empty: unlimited.', null=True, validators=[django.core.validators.MinValueValidator(1)])),
                    ('max_concurrent_runs', models.PositiveIntegerField(blank=True, help_text='Queued or running runs; empty: unlimited.', null=True, validators=[django.core.validators.MinValueValidator(1)])),
                    ('tokens_per_day', models.PositiveBigIntegerField(blank=True, help_text='Input + output tokens of runs finished since 00:00 UTC; empty: unlimited.', null=True, validators=[django.core.validators.MinValueValidator(1)])),
                    ('created_at', models.DateTimeField(auto_now_add=True)),
                    ('last_used_at', models.DateTimeField(blank=True, null=True)),
                ],
                options={
                    'verbose_name': 'API key',
                    'db_table': 'interfaces_apikey',
                    'ordering': ('-created_at',),
                },
            ),
            ],
        ),
    ]
