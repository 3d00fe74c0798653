from django.apps import AppConfig


class StarsConfig(AppConfig):
    name = "stars"
    verbose_name = "Stars (multi-agent teams)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cosmos.kinds import register_kind
        from cosmos.services import revisions

        from . import team
        from .executors import execute_star
        from .models import STAR_KIND, Membership, Star

        register_kind(STAR_KIND, execute_star, team.check_star, target_model=Star, description="star (team of agents)")
        revisions.register(
            STAR_KIND,
            Star,
            team.star_definition,
            team.apply_star_definition,
            after_apply=team.apply_star_members,
            watch=[(Membership, lambda membership: membership.star_id)],
        )
