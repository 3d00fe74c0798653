"""A2A routes, included at the root by ``asteros_site.routes`` unless ``ASTEROS_ENABLE_A2A`` is off.

Per agent, star and workflow (``<base>`` = ``/a2a/{agents|stars|workflows}/{id}``):

- ``GET <base>/.well-known/agent-card.json``: the agent card (public);
- ``POST <base>``: JSON-RPC 2.0 (``GET <base>`` answers the card too);
- HTTP+JSON: ``POST <base>/message:send``, ``POST <base>/message:stream``, ``GET <base>/tasks``,
  ``GET <base>/tasks/{id}``, ``POST <base>/tasks/{id}:cancel``, ``GET|POST <base>/tasks/{id}:subscribe``,
  ``POST|GET <base>/tasks/{id}/pushNotificationConfigs``, ``GET|DELETE
  <base>/tasks/{id}/pushNotificationConfigs/{configId}`` and ``GET <base>/extendedAgentCard``
  (it answers "not supported").

And ``GET /a2a/`` (a directory of every agent), ``GET /a2a/cards`` (all the cards) and
``GET /.well-known/agent-card.json`` (the domain's card: ``ASTEROS_A2A_DEFAULT``'s, or the first
agent's). Every path
takes an optional trailing slash, POST included. Patterns with ``:`` need ``re_path``.
"""

from __future__ import annotations

from django.urls import re_path

from cosmos.kinds import COLLECTION_PATTERN
from interfaces.a2a import views

# ``resource`` is a run kind's collection (``cosmos.kinds``): agents, stars, workflows.
BASE = rf"^a2a/(?P<resource>{COLLECTION_PATTERN})/(?P<object_id>[A-Za-z0-9_-]+)"
TASK = r"/tasks/(?P<task_id>[^/:]+)"

urlpatterns = [
    re_path(r"^\.well-known/agent-card\.json$", views.root_card, name="a2a-root-card"),
    re_path(r"^a2a/?$", views.directory, name="a2a-directory"),
    re_path(r"^a2a/cards/?$", views.cards, name="a2a-cards"),
    re_path(BASE + r"/?$", views.jsonrpc_endpoint, name="a2a-jsonrpc"),
    re_path(BASE + r"/\.well-known/agent-card\.json$", views.agent_card, name="a2a-card"),
    re_path(BASE + r"/message:send/?$", views.message_send, name="a2a-message-send"),
    re_path(BASE + r"/message:stream/?$", views.message_stream, name="a2a-message-stream"),
    re_path(BASE + r"/tasks/?$", views.tasks_list, name="a2a-tasks"),
    re_path(BASE + TASK + r"/?$", views.task_get, name="a2a-task"),
    re_path(BASE + TASK + r":cancel/?$", views.task_cancel, name="a2a-task-cancel"),
    re_path(BASE + TASK + r":subscribe/?$", views.task_subscribe, name="a2a-task-subscribe"),
    re_path(
        BASE + TASK + r"/pushNotificationConfigs(?:/(?P<config_id>[^/]+))?/?$",
        views.push_configs,
        name="a2a-push-configs",
    ),
    re_path(BASE + r"/extendedAgentCard/?$", views.extended_card, name="a2a-extended-card"),
]
