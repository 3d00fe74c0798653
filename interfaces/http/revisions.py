"""Revisions on the REST door: ``GET …/{id}/revisions``, ``…/revisions/{n}``, ``…/revisions/{n}/restore``
and ``…/revisions/compare?from=&to=`` for every definition that keeps them (cosmos.services.revisions)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from cosmos.models import Revision
from cosmos.services import revisions
from cosmos.services.errors import Invalid
from interfaces.edge.auth import caller_of


class RevisionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Revision
        fields = ("number", "author", "note", "created_at", "definition")
        read_only_fields = fields


class RevisionSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Revision
        fields = ("number", "author", "note", "created_at")
        read_only_fields = fields


class ComparisonSerializer(serializers.Serializer):
    from_revision = serializers.IntegerField()
    to_revision = serializers.IntegerField()
    changes = serializers.ListField(child=serializers.DictField())
    diff = serializers.ListField(child=serializers.CharField())


# One revision's URL segment: its number (anything else is no route, a 404).
NUMBER = r"(?P<number>[0-9]{1,9})"


def _revision_action(**kwargs):
    return action(detail=True, filter_backends=[], pagination_class=None, **kwargs)


class RevisionsMixin:
    """Add to a definition's viewset with ``revision_resource`` set ("agent", "star", …)."""

    revision_resource: str = ""

    def _revisions_target(self) -> str:
        return str(self.get_object().pk)

    @extend_schema(summary="The definition's revisions, newest first", responses=RevisionSummarySerializer(many=True))
    @_revision_action(methods=["get"], serializer_class=RevisionSummarySerializer)
    def revisions(self, request, *args, **kwargs):
        """Every saved state, newest first: number, author, note, time (the definitions: ``…/revisions/{n}``)."""
        listed = revisions.list_revisions(self.revision_resource, self._revisions_target())
        return Response(RevisionSummarySerializer(listed[:1000], many=True).data)

    @extend_schema(summary="One revision, with its whole definition", responses=RevisionSerializer)
    @_revision_action(methods=["get"], url_path=rf"revisions/{NUMBER}", serializer_class=RevisionSerializer)
    def revision(self, request, number: str, *args, **kwargs):
        found = revisions.get_revision(self.revision_resource, self._revisions_target(), number)
        return Response(RevisionSerializer(found).data)

    @extend_schema(
        summary="What changed between two revisions",
        parameters=[OpenApiParameter("from", int, required=True), OpenApiParameter("to", int, required=True)],
        responses=ComparisonSerializer,
    )
    @_revision_action(methods=["get"], url_path="revisions/compare", serializer_class=ComparisonSerializer)
    def compare_revisions(self, request, *args, **kwargs):
        target = self._revisions_target()  # an unknown definition is a 404 before a bad query is a 400
        first, second = request.query_params.get("from"), request.query_params.get("to")
        if first is None or second is None:
            raise Invalid("Give both 'from' and 'to' revision numbers.")
        comparison = revisions.compare(self.revision_resource, target, first, second)
        return Response(
            {
                "from_revision": comparison.older.number,
                "to_revision": comparison.newer.number,
                "changes": [{"field": c.field, "before": c.before, "after": c.after} for c in comparison.changes],
                "diff": comparison.text_diff,
            }
        )

    @extend_schema(summary="Make a revision the current definition again", request=None, responses=RevisionSerializer)
    @_revision_action(methods=["post"], url_path=rf"revisions/{NUMBER}/restore", serializer_class=RevisionSerializer)
    def restore_revision(self, request, number: str, *args, **kwargs):
        """Restore revision ``n``: recorded as a new revision ("restored from revision n")."""
        restored = revisions.restore(
            self.revision_resource, self._revisions_target(), number, author=caller_of(request.user)
        )
        return Response(RevisionSerializer(restored).data)
