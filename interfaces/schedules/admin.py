"""Schedules in the admin. Celery beat's own tables are the machinery behind them, kept in step
with each schedule, not a second place to edit: their admin pages are taken away."""

from django.contrib import admin
from django_celery_beat import models as beat

for model in (beat.PeriodicTask, beat.IntervalSchedule, beat.CrontabSchedule, beat.SolarSchedule, beat.ClockedSchedule):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
