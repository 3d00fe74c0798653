from django.apps import AppConfig


class StarsConfig(AppConfig):
    name = "stars"
    verbose_name = "Stars (multi-agent teams)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cosmos.kinds import register_kind

        from .executors import execute_star
        from .models import STAR_KIND, Star
        from .team import check_star

        register_kind(STAR_KIND, execute_star, check_star, target_model=Star, description="star (team of agents)")
