from django.apps import AppConfig


class InterfacesConfig(AppConfig):
    name = "interfaces"
    verbose_name = "Interfaces (API, A2A, AG-UI, dashboard)"
    default_auto_field = "django.db.models.BigAutoField"
