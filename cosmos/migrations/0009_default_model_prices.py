"""Shipped prices of common Anthropic and OpenAI models (USD per million tokens, list prices of
standard requests as published by the providers, December 2026), and 0 for the scripted
provider. Editable in the admin; a row an operator changed or added is never touched again.

Anthropic bills cache writes (5-minute cache) at 1.25x and cache reads at 0.1x the input
price. OpenAI caches prompts on its own and bills no writes: its cache write price is the input
price (never used, the API reports no writes).
"""

from decimal import Decimal

from django.db import migrations

# (provider, model or prefix*, input, output, cache read, cache write)
DEFAULTS = [
    ("anthropic", "claude-opus-4-5*", "5", "25", "0.50", "6.25"),
    ("anthropic", "claude-opus-4-1*", "15", "75", "1.50", "18.75"),
    ("anthropic", "claude-opus-4-0", "15", "75", "1.50", "18.75"),
    ("anthropic", "claude-opus-4-20250514", "15", "75", "1.50", "18.75"),
    ("anthropic", "claude-sonnet-4*", "3", "15", "0.30", "3.75"),
    ("anthropic", "claude-3-7-sonnet*", "3", "15", "0.30", "3.75"),
    ("anthropic", "claude-haiku-4-5*", "1", "5", "0.10", "1.25"),
    ("anthropic", "claude-3-5-haiku*", "0.80", "4", "0.08", "1"),
    ("anthropic", "claude-3-haiku*", "0.25", "1.25", "0.03", "0.30"),
    ("openai", "gpt-5*", "1.25", "10", "0.125", "1.25"),
    ("openai", "gpt-5-mini*", "0.25", "2", "0.025", "0.25"),
    ("openai", "gpt-5-nano*", "0.05", "0.40", "0.005", "0.05"),
    ("openai", "gpt-4.1*", "2", "8", "0.50", "2"),
    ("openai", "gpt-4.1-mini*", "0.40", "1.60", "0.10", "0.40"),
    ("openai", "gpt-4.1-nano*", "0.10", "0.40", "0.025", "0.10"),
    ("openai", "gpt-4o*", "2.50", "10", "1.25", "2.50"),
    ("openai", "gpt-4o-2024-05-13", "5", "15", "5", "5"),
    ("openai", "gpt-4o-mini*", "0.15", "0.60", "0.075", "0.15"),
    ("openai", "o3", "2", "8", "0.50", "2"),
    ("openai", "o3-2025*", "2", "8", "0.50", "2"),
    ("openai", "o4-mini*", "1.10", "4.40", "0.275", "1.10"),
    ("scripted", "*", "0", "0", "0", "0"),
]


def seed(apps, schema_editor):
    ModelPrice = apps.get_model("cosmos", "ModelPrice")
    for provider, model, inp, out, read, write in DEFAULTS:
        ModelPrice.objects.get_or_create(
            provider=provider,
            model=model,
            defaults={
                "input_per_million": Decimal(inp),
                "output_per_million": Decimal(out),
                "cache_read_per_million": Decimal(read),
                "cache_write_per_million": Decimal(write),
                "currency": "USD",
            },
        )


class Migration(migrations.Migration):
    dependencies = [("cosmos", "0008_run_cost_model_price")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
