# ruff: noqa: E501  (the snapshot holds the command's lines as printed)
"""``manage.py asteros routes``: every route of every door, one per line, in match order.

The snapshot below is the whole list: a route added, lost or moved shows up here as a diff.
Regenerate it with ``python manage.py asteros routes`` after a deliberate change.
"""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command

from asteros_site.route_table import readable_path

ROUTES = """\
GET,POST,DELETE           /mcp[/]  mcp  interfaces.mcp.asgi.MCPEndpoint
*                         /admin/  admin:index  django.contrib.admin.sites.AdminSite.index
*                         /admin/login/  admin:login  django.contrib.admin.sites.AdminSite.login
*                         /admin/logout/  admin:logout  django.contrib.admin.sites.AdminSite.logout
*                         /admin/password_change/  admin:password_change  django.contrib.admin.sites.AdminSite.password_change
*                         /admin/password_change/done/  admin:password_change_done  django.contrib.admin.sites.AdminSite.password_change_done
*                         /admin/autocomplete/  admin:autocomplete  django.contrib.admin.sites.AdminSite.autocomplete_view
*                         /admin/jsi18n/  admin:jsi18n  django.contrib.admin.sites.AdminSite.i18n_javascript
*                         /admin/r/{content_type_id}/{object_id}/  admin:view_on_site  django.contrib.contenttypes.views.shortcut
*                         /admin/auth/group/  admin:auth_group_changelist  django.contrib.admin.options.ModelAdmin.changelist_view
*                         /admin/auth/group/add/  admin:auth_group_add  django.contrib.admin.options.ModelAdmin.add_view
*                         /admin/auth/group/{object_id}/history/  admin:auth_group_history  django.contrib.admin.options.ModelAdmin.history_view
*                         /admin/auth/group/{object_id}/delete/  admin:auth_group_delete  django.contrib.admin.options.ModelAdmin.delete_view
*                         /admin/auth/group/{object_id}/change/  admin:auth_group_change  django.contrib.admin.options.ModelAdmin.change_view
GET,POST,PUT,PATCH,DELETE /admin/auth/group/{object_id}/  -  django.views.generic.base.RedirectView
*                         /admin/auth/user/{id}/password/  admin:auth_user_password_change  django.contrib.auth.admin.UserAdmin.user_change_password
*                         /admin/auth/user/  admin:auth_user_changelist  django.contrib.admin.options.ModelAdmin.changelist_view
*                         /admin/auth/user/add/  admin:auth_user_add  django.contrib.auth.admin.UserAdmin.add_view
*                         /admin/auth/user/{object_id}/history/  admin:auth_user_history  django.contrib.admin.options.ModelAdmin.history_view
*                         /admin/auth/user/{object_id}/delete/  admin:auth_user_delete  django.contrib.admin.options.ModelAdmin.delete_view
*                         /admin/auth/user/{object_id}/change/  admin:auth_user_change  django.contrib.admin.options.ModelAdmin.change_view
GET,POST,PUT,PATCH,DELETE /admin/auth/user/{object_id}/  -  django.views.generic.base.RedirectView
*                         /admin/cosmos/interrupt/{object_id}/resolve/  admin:cosmos_interrupt_resolve  cosmos.admin_interrupts.InterruptAdmin.resolve_view
*                         /admin/cosmos/interrupt/  admin:cosmos_interrupt_changelist  django.contrib.admin.options.ModelAdmin.changelist_view
*                         /admin/cosmos/interrupt/add/  admin:cosmos_interrupt_add  django.contrib.admin.options.ModelAdmin.add_view
*                         /admin/cosmos/interrupt/{object_id}/history/  admin:cosmos_interrupt_history  django.contrib.admin.options.ModelAdmin.history_view
*                         /admin/cosmos/interrupt/{object_id}/delete/  admin:cosmos_interrupt_delete  django.contrib.admin.options.ModelAdmin.delete_view
*                         /admin/cosmos/interrupt/{object_id}/change/  admin:cosmos_interrupt_change  cosmos.admin_interrupts.InterruptAdmin.change_view
GET,POST,PUT,PATCH,DELETE /admin/cosmos/interrupt/{object_id}/  -  django.views.generic.base.RedirectView
*                         /admin/cosmos/agenttemplate/  admin:cosmos_agenttemplate_changelist  django.contrib.admin.options.ModelAdmin.changelist_view
*                         /admin/cosmos/agenttemplate/add/  admin:cosmos_agenttemplate_add  django.contrib.admin.options.ModelAdmin.add_view
*                         /admin/cosmos/agenttemplate/{object_id}/history/  admin:cosmos_agenttemplate_history  django.contrib.admin.options.ModelAdmin.history_view
*                         /admin/cosmos/agenttemplate/{object_id}/delete/  admin:cosmos_agenttemplate_delete  django.contrib.admin.options.ModelAdmin.delete_view
*                         /admin/cosmos/agenttemplate/{object_id}/change/  admin:cosmos_agenttemplate_change  django.contrib.admin.options.ModelAdmin.change_view
GET,POST,PUT,PATCH,DELETE /admin/cosmos/agenttemplate/{object_id}/  -  django.views.generic.base.RedirectView
*                         /admin/cosmos/agent/  admin:cosmos_agent_changelist  django.contrib.admin.options.ModelAdmin.changelist_view
*                         /admin/cosmos/agent/add/  admin:cosmos_agent_add  django.contrib.admin.options.ModelAdmin.add_view
*                         /admin/cosmos/agent/{object_id}/history/  admin:cosmos_agent_history  django.contrib.admin.options.ModelAdmin.history_view
*                         /admin/cosmos/agent/{object_id}/delete/  admin:cosmos_agent_delete  django.contrib.admin.options.ModelAdmin.delete_view
*                         /admin/cosmos/agent/{object_id}/change/  admin:cosmos_agent_change  django.contrib.admin.options.ModelAdmin.change_view
GET,POST,PUT,PATCH,DELETE /admin/cosmos/agent/{object_id}/  -  django.views.generic.base.RedirectView
*                         /admin/cosmos/session/  admin:cosmos_session_changelist  django.contrib.admin.options.ModelAdmin.changelist_view
*                         /admin/cosmos/session/add/  admin:cosmos_session_add  django.contrib.admin.options.ModelAdmin.add_view
*                         /admin/cosmos/session/{object_id}/history/  admin:cosmos_session_history  django.contrib.admin.options.ModelAdmin.history_view
*                         /admin/cosmos/session/{object_id}/delete/  admin:cosmos_session_delete  django.contrib.admin.options.ModelAdmin.delete_view
*                         /admin/cosmos/session/{object_id}/change/  admin:cosmos_session_change  django.contrib.admin.options.ModelAdmin.change_view
GET,POST,PUT,PATCH,DELETE /admin/cosmos/session/{object_id}/  -  django.views.generic.base.RedirectView
*                         /admin/cosmos/run/  admin:cosmos_run_changelist  django.contrib.admin.options.ModelAdmin.changelist_view
*                         /admin/cosmos/run/add/  admin:cosmos_run_add  django.contrib.admin.options.ModelAdmin.add_view
*                         /admin/cosmos/run/{object_id}/history/  admin:cosmos_run_history  django.contrib.admin.options.ModelAdmin.history_view
*                         /admin/cosmos/run/{object_id}/delete/  admin:cosmos_run_delete  django.contrib.admin.options.ModelAdmin.delete_view
*                         /admin/cosmos/run/{object_id}/change/  admin:cosmos_run_change  django.contrib.admin.options.ModelAdmin.change_view
GET,POST,PUT,PATCH,DELETE /admin/cosmos/run/{object_id}/  -  django.views.generic.base.RedirectView
*                         /admin/cosmos/runevent/  admin:cosmos_runevent_changelist  django.contrib.admin.options.ModelAdmin.changelist_view
*                         /admin/cosmos/runevent/add/  admin:cosmos_runevent_add  django.contrib.admin.options.ModelAdmin.add_view
*                         /admin/cosmos/runevent/{object_id}/history/  admin:cosmos_runevent_history  django.contrib.admin.options.ModelAdmin.history_view
*                         /admin/cosmos/runevent/{object_id}/delete/  admin:cosmos_runevent_delete  django.contrib.admin.options.ModelAdmin.delete_view
*                         /admin/cosmos/runevent/{object_id}/change/  admin:cosmos_runevent_change  django.contrib.admin.options.ModelAdmin.change_view
GET,POST,PUT,PATCH,DELETE /admin/cosmos/runevent/{object_id}/  -  django.views.generic.base.RedirectView
*                         /admin/cosmos/workerheartbeat/  admin:cosmos_workerheartbeat_changelist  django.contrib.admin.options.ModelAdmin.changelist_view
*                         /admin/cosmos/workerheartbeat/add/  admin:cosmos_workerheartbeat_add  django.contrib.admin.options.ModelAdmin.add_view
*                         /admin/cosmos/workerheartbeat/{object_id}/history/  admin:cosmos_workerheartbeat_history  django.contrib.admin.options.ModelAdmin.history_view
*                         /admin/cosmos/workerheartbeat/{object_id}/delete/  admin:cosmos_workerheartbeat_delete  django.contrib.admin.options.ModelAdmin.delete_view
*                         /admin/cosmos/workerheartbeat/{object_id}/change/  admin:cosmos_workerheartbeat_change  django.contrib.admin.options.ModelAdmin.change_view
GET,POST,PUT,PATCH,DELETE /admin/cosmos/workerheartbeat/{object_id}/  -  django.views.generic.base.RedirectView
*                         /admin/cosmos/modelprice/usage/  admin:cosmos_modelprice_usage  cosmos.admin.ModelPriceAdmin.usage_view
*                         /admin/cosmos/modelprice/  admin:cosmos_modelprice_changelist  django.contrib.admin.options.ModelAdmin.changelist_view
*                         /admin/cosmos/modelprice/add/  admin:cosmos_modelprice_add  django.contrib.admin.options.ModelAdmin.add_view
*                         /admin/cosmos/modelprice/{object_id}/history/  admin:cosmos_modelprice_history  django.contrib.admin.options.ModelAdmin.history_view
*                         /admin/cosmos/modelprice/{object_id}/delete/  admin:cosmos_modelprice_delete  django.contrib.admin.options.ModelAdmin.delete_view
*                         /admin/cosmos/modelprice/{object_id}/change/  admin:cosmos_modelprice_change  django.contrib.admin.options.ModelAdmin.change_view
GET,POST,PUT,PATCH,DELETE /admin/cosmos/modelprice/{object_id}/  -  django.views.generic.base.RedirectView
*                         /admin/stars/star/  admin:stars_star_changelist  django.contrib.admin.options.ModelAdmin.changelist_view
*                         /admin/stars/star/add/  admin:stars_star_add  django.contrib.admin.options.ModelAdmin.add_view
*                         /admin/stars/star/{object_id}/history/  admin:stars_star_history  django.contrib.admin.options.ModelAdmin.history_view
*                         /admin/stars/star/{object_id}/delete/  admin:stars_star_delete  django.contrib.admin.options.ModelAdmin.delete_view
*                         /admin/stars/star/{object_id}/change/  admin:stars_star_change  django.contrib.admin.options.ModelAdmin.change_view
GET,POST,PUT,PATCH,DELETE /admin/stars/star/{object_id}/  -  django.views.generic.base.RedirectView
*                         /admin/stars/membership/  admin:stars_membership_changelist  django.contrib.admin.options.ModelAdmin.changelist_view
*                         /admin/stars/membership/add/  admin:stars_membership_add  django.contrib.admin.options.ModelAdmin.add_view
*                         /admin/stars/membership/{object_id}/history/  admin:stars_membership_history  django.contrib.admin.options.ModelAdmin.history_view
*                         /admin/stars/membership/{object_id}/delete/  admin:stars_membership_delete  django.contrib.admin.options.ModelAdmin.delete_view
*                         /admin/stars/membership/{object_id}/change/  admin:stars_membership_change  django.contrib.admin.options.ModelAdmin.change_view
GET,POST,PUT,PATCH,DELETE /admin/stars/membership/{object_id}/  -  django.views.generic.base.RedirectView
*                         /admin/stars/starmessage/  admin:stars_starmessage_changelist  django.contrib.admin.options.ModelAdmin.changelist_view
*                         /admin/stars/starmessage/add/  admin:stars_starmessage_add  django.contrib.admin.options.ModelAdmin.add_view
*                         /admin/stars/starmessage/{object_id}/history/  admin:stars_starmessage_history  django.contrib.admin.options.ModelAdmin.history_view
*                         /admin/stars/starmessage/{object_id}/delete/  admin:stars_starmessage_delete  django.contrib.admin.options.ModelAdmin.delete_view
*                         /admin/stars/starmessage/{object_id}/change/  admin:stars_starmessage_change  django.contrib.admin.options.ModelAdmin.change_view
GET,POST,PUT,PATCH,DELETE /admin/stars/starmessage/{object_id}/  -  django.views.generic.base.RedirectView
*                         /admin/workflows/workflow/  admin:workflows_workflow_changelist  django.contrib.admin.options.ModelAdmin.changelist_view
*                         /admin/workflows/workflow/add/  admin:workflows_workflow_add  django.contrib.admin.options.ModelAdmin.add_view
*                         /admin/workflows/workflow/{object_id}/history/  admin:workflows_workflow_history  django.contrib.admin.options.ModelAdmin.history_view
*                         /admin/workflows/workflow/{object_id}/delete/  admin:workflows_workflow_delete  django.contrib.admin.options.ModelAdmin.delete_view
*                         /admin/workflows/workflow/{object_id}/change/  admin:workflows_workflow_change  django.contrib.admin.options.ModelAdmin.change_view
GET,POST,PUT,PATCH,DELETE /admin/workflows/workflow/{object_id}/  -  django.views.generic.base.RedirectView
*                         /admin/keys/apikey/  admin:keys_apikey_changelist  django.contrib.admin.options.ModelAdmin.changelist_view
*                         /admin/keys/apikey/add/  admin:keys_apikey_add  django.contrib.admin.options.ModelAdmin.add_view
*                         /admin/keys/apikey/{object_id}/history/  admin:keys_apikey_history  django.contrib.admin.options.ModelAdmin.history_view
*                         /admin/keys/apikey/{object_id}/delete/  admin:keys_apikey_delete  django.contrib.admin.options.ModelAdmin.delete_view
*                         /admin/keys/apikey/{object_id}/change/  admin:keys_apikey_change  django.contrib.admin.options.ModelAdmin.change_view
GET,POST,PUT,PATCH,DELETE /admin/keys/apikey/{object_id}/  -  django.views.generic.base.RedirectView
*                         /admin/connectors/remoteagent/  admin:connectors_remoteagent_changelist  django.contrib.admin.options.ModelAdmin.changelist_view
*                         /admin/connectors/remoteagent/add/  admin:connectors_remoteagent_add  django.contrib.admin.options.ModelAdmin.add_view
*                         /admin/connectors/remoteagent/{object_id}/history/  admin:connectors_remoteagent_history  django.contrib.admin.options.ModelAdmin.history_view
*                         /admin/connectors/remoteagent/{object_id}/delete/  admin:connectors_remoteagent_delete  django.contrib.admin.options.ModelAdmin.delete_view
*                         /admin/connectors/remoteagent/{object_id}/change/  admin:connectors_remoteagent_change  django.contrib.admin.options.ModelAdmin.change_view
GET,POST,PUT,PATCH,DELETE /admin/connectors/remoteagent/{object_id}/  -  django.views.generic.base.RedirectView
*                         /admin/connectors/mcpserver/  admin:connectors_mcpserver_changelist  django.contrib.admin.options.ModelAdmin.changelist_view
*                         /admin/connectors/mcpserver/add/  admin:connectors_mcpserver_add  django.contrib.admin.options.ModelAdmin.add_view
*                         /admin/connectors/mcpserver/{object_id}/history/  admin:connectors_mcpserver_history  django.contrib.admin.options.ModelAdmin.history_view
*                         /admin/connectors/mcpserver/{object_id}/delete/  admin:connectors_mcpserver_delete  django.contrib.admin.options.ModelAdmin.delete_view
*                         /admin/connectors/mcpserver/{object_id}/change/  admin:connectors_mcpserver_change  interfaces.connectors.admin.MCPServerAdmin.change_view
GET,POST,PUT,PATCH,DELETE /admin/connectors/mcpserver/{object_id}/  -  django.views.generic.base.RedirectView
*                         /admin/webhooks/webhook/  admin:webhooks_webhook_changelist  django.contrib.admin.options.ModelAdmin.changelist_view
*                         /admin/webhooks/webhook/add/  admin:webhooks_webhook_add  django.contrib.admin.options.ModelAdmin.add_view
*                         /admin/webhooks/webhook/{object_id}/history/  admin:webhooks_webhook_history  django.contrib.admin.options.ModelAdmin.history_view
*                         /admin/webhooks/webhook/{object_id}/delete/  admin:webhooks_webhook_delete  django.contrib.admin.options.ModelAdmin.delete_view
*                         /admin/webhooks/webhook/{object_id}/change/  admin:webhooks_webhook_change  django.contrib.admin.options.ModelAdmin.change_view
GET,POST,PUT,PATCH,DELETE /admin/webhooks/webhook/{object_id}/  -  django.views.generic.base.RedirectView
*                         /admin/webhooks/delivery/  admin:webhooks_delivery_changelist  django.contrib.admin.options.ModelAdmin.changelist_view
*                         /admin/webhooks/delivery/add/  admin:webhooks_delivery_add  django.contrib.admin.options.ModelAdmin.add_view
*                         /admin/webhooks/delivery/{object_id}/history/  admin:webhooks_delivery_history  django.contrib.admin.options.ModelAdmin.history_view
*                         /admin/webhooks/delivery/{object_id}/delete/  admin:webhooks_delivery_delete  django.contrib.admin.options.ModelAdmin.delete_view
*                         /admin/webhooks/delivery/{object_id}/change/  admin:webhooks_delivery_change  django.contrib.admin.options.ModelAdmin.change_view
GET,POST,PUT,PATCH,DELETE /admin/webhooks/delivery/{object_id}/  -  django.views.generic.base.RedirectView
*                         /admin/webhooks/pushconfig/  admin:webhooks_pushconfig_changelist  django.contrib.admin.options.ModelAdmin.changelist_view
*                         /admin/webhooks/pushconfig/add/  admin:webhooks_pushconfig_add  django.contrib.admin.options.ModelAdmin.add_view
*                         /admin/webhooks/pushconfig/{object_id}/history/  admin:webhooks_pushconfig_history  django.contrib.admin.options.ModelAdmin.history_view
*                         /admin/webhooks/pushconfig/{object_id}/delete/  admin:webhooks_pushconfig_delete  django.contrib.admin.options.ModelAdmin.delete_view
*                         /admin/webhooks/pushconfig/{object_id}/change/  admin:webhooks_pushconfig_change  django.contrib.admin.options.ModelAdmin.change_view
GET,POST,PUT,PATCH,DELETE /admin/webhooks/pushconfig/{object_id}/  -  django.views.generic.base.RedirectView
*                         /admin/schedules/schedule/  admin:schedules_schedule_changelist  django.contrib.admin.options.ModelAdmin.changelist_view
*                         /admin/schedules/schedule/add/  admin:schedules_schedule_add  django.contrib.admin.options.ModelAdmin.add_view
*                         /admin/schedules/schedule/{object_id}/history/  admin:schedules_schedule_history  django.contrib.admin.options.ModelAdmin.history_view
*                         /admin/schedules/schedule/{object_id}/delete/  admin:schedules_schedule_delete  django.contrib.admin.options.ModelAdmin.delete_view
*                         /admin/schedules/schedule/{object_id}/change/  admin:schedules_schedule_change  django.contrib.admin.options.ModelAdmin.change_view
GET,POST,PUT,PATCH,DELETE /admin/schedules/schedule/{object_id}/  -  django.views.generic.base.RedirectView
*                         /admin/{app_label}/  admin:app_list  django.contrib.admin.sites.AdminSite.app_index
*                         /admin/{url}  -  django.contrib.admin.sites.AdminSite.catch_all_view
GET                       /api  asteros-api-root  interfaces.http.views.APIRootView
GET                       /api/schema  api:schema  drf_spectacular.views.SpectacularAPIView
GET                       /api/docs  api:docs  interfaces.http.schema.DocsView
GET                       /api/keys/me/usage  api:key-usage  interfaces.http.keys.KeyUsageView
GET                       /api/usage  api:usage  interfaces.http.usage.UsageView
GET,POST                  /api/agents  api:agents-list  interfaces.http.resources.AgentViewSet.list,create
GET,PUT,PATCH,DELETE      /api/agents/{id}  api:agents-detail  interfaces.http.resources.AgentViewSet.retrieve,update,partial_update,destroy
POST                      /api/agents/{id}/run  api:agents-run  interfaces.http.resources.AgentViewSet.run
GET                       /api/agents/{id}/status  api:agents-status  interfaces.http.resources.AgentViewSet.status
GET,POST                  /api/templates  api:templates-list  interfaces.http.resources.TemplateViewSet.list,create
GET,PUT,PATCH,DELETE      /api/templates/{id}  api:templates-detail  interfaces.http.resources.TemplateViewSet.retrieve,update,partial_update,destroy
GET,POST                  /api/stars  api:stars-list  interfaces.http.resources.StarViewSet.list,create
GET,PUT,PATCH,DELETE      /api/stars/{id}  api:stars-detail  interfaces.http.resources.StarViewSet.retrieve,update,partial_update,destroy
POST                      /api/stars/{id}/join  api:stars-join  interfaces.http.resources.StarViewSet.join
POST                      /api/stars/{id}/leave  api:stars-leave  interfaces.http.resources.StarViewSet.leave
GET                       /api/stars/{id}/members  api:stars-members  interfaces.http.resources.StarViewSet.members
GET                       /api/stars/{id}/messages  api:stars-messages  interfaces.http.resources.StarViewSet.messages
POST                      /api/stars/{id}/run  api:stars-run  interfaces.http.resources.StarViewSet.run
GET,POST                  /api/workflows  api:workflows-list  interfaces.http.resources.WorkflowViewSet.list,create
GET,PUT,PATCH,DELETE      /api/workflows/{id}  api:workflows-detail  interfaces.http.resources.WorkflowViewSet.retrieve,update,partial_update,destroy
POST                      /api/workflows/{id}/execute  api:workflows-execute  interfaces.http.resources.WorkflowViewSet.execute
GET,POST                  /api/sessions  api:sessions-list  interfaces.http.resources.SessionViewSet.list,create
GET,PUT,PATCH,DELETE      /api/sessions/{id}  api:sessions-detail  interfaces.http.resources.SessionViewSet.retrieve,update,partial_update,destroy
GET                       /api/runs  api:runs-list  interfaces.http.resources.RunViewSet.list
GET                       /api/runs/{id}  api:runs-detail  interfaces.http.resources.RunViewSet.retrieve
POST                      /api/runs/{id}/cancel  api:runs-cancel  interfaces.http.resources.RunViewSet.cancel
GET                       /api/runs/{id}/events  api:runs-events  interfaces.http.resources.RunViewSet.events
POST                      /api/runs/{id}/resume  api:runs-resume  interfaces.http.resources.RunViewSet.resume
GET                       /api/interrupts  api:interrupts-list  interfaces.http.resources.InterruptViewSet.list
GET                       /api/interrupts/{id}  api:interrupts-detail  interfaces.http.resources.InterruptViewSet.retrieve
GET,POST                  /api/remote-agents  api:remote-agents-list  interfaces.http.remote_agents.RemoteAgentViewSet.list,create
GET,PUT,PATCH,DELETE      /api/remote-agents/{name}  api:remote-agents-detail  interfaces.http.remote_agents.RemoteAgentViewSet.retrieve,update,partial_update,destroy
GET,POST                  /api/mcp-servers  api:mcp-servers-list  interfaces.http.mcp_servers.MCPServerViewSet.list,create
GET,PUT,PATCH,DELETE      /api/mcp-servers/{name}  api:mcp-servers-detail  interfaces.http.mcp_servers.MCPServerViewSet.retrieve,update,partial_update,destroy
GET                       /api/mcp-servers/{name}/tools  api:mcp-servers-tools  interfaces.http.mcp_servers.MCPServerViewSet.tools
GET,POST                  /api/schedules  api:schedules-list  interfaces.http.schedules.ScheduleViewSet.list,create
GET,PUT,PATCH,DELETE      /api/schedules/{name}  api:schedules-detail  interfaces.http.schedules.ScheduleViewSet.retrieve,update,partial_update,destroy
POST                      /api/schedules/{name}/run  api:schedules-run  interfaces.http.schedules.ScheduleViewSet.run
GET                       /api/schedules/{name}/runs  api:schedules-runs  interfaces.http.schedules.ScheduleViewSet.runs
GET,POST                  /api/webhooks  api:webhooks-list  interfaces.http.webhooks.WebhookViewSet.list,create
GET,PUT,PATCH,DELETE      /api/webhooks/{id}  api:webhooks-detail  interfaces.http.webhooks.WebhookViewSet.retrieve,update,partial_update,destroy
GET                       /api/webhooks/{id}/deliveries  api:webhooks-deliveries  interfaces.http.webhooks.WebhookViewSet.deliveries
GET                       /api/webhooks/{id}/deliveries/{delivery}  api:webhooks-delivery  interfaces.http.webhooks.WebhookViewSet.delivery
POST                      /api/webhooks/{id}/deliveries/{delivery}/redeliver  api:webhooks-redeliver  interfaces.http.webhooks.WebhookViewSet.redeliver
POST                      /api/webhooks/{id}/rotate-secret  api:webhooks-rotate-secret  interfaces.http.webhooks.WebhookViewSet.rotate_secret
POST                      /api/webhooks/{id}/test  api:webhooks-test  interfaces.http.webhooks.WebhookViewSet.test
GET                       /api/tools  api:tools-list  interfaces.http.views.ToolViewSet.list
GET                       /api/tools/{name}  api:tools-detail  interfaces.http.views.ToolViewSet.retrieve
POST                      /api/{collection}/{target}/run  api:kind-run  interfaces.http.kind_runs.KindRunView
GET                       /health  health  interfaces.http.views.HealthView
GET                       /metrics  metrics  interfaces.http.views.MetricsView
*                         /.well-known/agent-card.json  a2a-root-card  interfaces.a2a.views.root_card
*                         /a2a[/]  a2a-directory  interfaces.a2a.views.directory
*                         /a2a/cards[/]  a2a-cards  interfaces.a2a.views.cards
*                         /a2a/{resource}/{object_id}[/]  a2a-jsonrpc  interfaces.a2a.views.jsonrpc_endpoint
*                         /a2a/{resource}/{object_id}/.well-known/agent-card.json  a2a-card  interfaces.a2a.views.agent_card
*                         /a2a/{resource}/{object_id}/message:send[/]  a2a-message-send  interfaces.a2a.views.message_send
*                         /a2a/{resource}/{object_id}/message:stream[/]  a2a-message-stream  interfaces.a2a.views.message_stream
*                         /a2a/{resource}/{object_id}/tasks[/]  a2a-tasks  interfaces.a2a.views.tasks_list
*                         /a2a/{resource}/{object_id}/tasks/{task_id}[/]  a2a-task  interfaces.a2a.views.task_get
*                         /a2a/{resource}/{object_id}/tasks/{task_id}:cancel[/]  a2a-task-cancel  interfaces.a2a.views.task_cancel
*                         /a2a/{resource}/{object_id}/tasks/{task_id}:subscribe[/]  a2a-task-subscribe  interfaces.a2a.views.task_subscribe
*                         /a2a/{resource}/{object_id}/tasks/{task_id}/pushNotificationConfigs[/{config_id}][/]  a2a-push-configs  interfaces.a2a.views.push_configs
*                         /a2a/{resource}/{object_id}/extendedAgentCard[/]  a2a-extended-card  interfaces.a2a.views.extended_card
*                         /agui/  agui:index  interfaces.agui.views.index
*                         /agui  -  interfaces.agui.views.index
*                         /agui/{collection}/{object_id}[/]  agui:run  interfaces.agui.views.run_endpoint
*                         /agent-protocol/info  agent_protocol:info  interfaces.agent_protocol.views.info
*                         /agent-protocol/assistants  agent_protocol:assistants  interfaces.agent_protocol.views.unsupported
*                         /agent-protocol/assistants/search  agent_protocol:assistants-search  interfaces.agent_protocol.views.assistants_search
*                         /agent-protocol/assistants/count  agent_protocol:assistants-count  interfaces.agent_protocol.views.assistants_count
*                         /agent-protocol/assistants/{assistant_id}/graph  agent_protocol:assistant-graph  interfaces.agent_protocol.views.assistant_graph
*                         /agent-protocol/assistants/{assistant_id}/schemas  agent_protocol:assistant-schemas  interfaces.agent_protocol.views.assistant_schemas
*                         /agent-protocol/assistants/{assistant_id}/subgraphs  agent_protocol:assistant-subgraphs  interfaces.agent_protocol.views.assistant_subgraphs
*                         /agent-protocol/assistants/{assistant_id}/subgraphs/{namespace}  agent_protocol:assistant-subgraph  interfaces.agent_protocol.views.assistant_subgraphs
*                         /agent-protocol/assistants/{assistant_id}/versions  agent_protocol:assistant-versions  interfaces.agent_protocol.views.assistant_versions
*                         /agent-protocol/assistants/{assistant_id}/latest  agent_protocol:assistant-latest  interfaces.agent_protocol.views.unsupported
*                         /agent-protocol/assistants/{assistant_id}  agent_protocol:assistant  interfaces.agent_protocol.views.assistant
*                         /agent-protocol/threads  agent_protocol:threads  interfaces.agent_protocol.views.threads
*                         /agent-protocol/threads/search  agent_protocol:threads-search  interfaces.agent_protocol.views.threads_search
*                         /agent-protocol/threads/count  agent_protocol:threads-count  interfaces.agent_protocol.views.threads_count
*                         /agent-protocol/threads/prune  agent_protocol:threads-prune  interfaces.agent_protocol.views.unsupported
*                         /agent-protocol/threads/{thread_id}/copy  agent_protocol:thread-copy  interfaces.agent_protocol.views.thread_copy
*                         /agent-protocol/threads/{thread_id}/state  agent_protocol:thread-state  interfaces.agent_protocol.views.thread_state
*                         /agent-protocol/threads/{thread_id}/state/{checkpoint}  agent_protocol:thread-state-checkpoint  interfaces.agent_protocol.views.unsupported
*                         /agent-protocol/threads/{thread_id}/history  agent_protocol:thread-history  interfaces.agent_protocol.views.thread_history
*                         /agent-protocol/threads/{thread_id}/stream  agent_protocol:thread-stream  interfaces.agent_protocol.views.unsupported
*                         /agent-protocol/threads/{thread_id}/runs/crons  agent_protocol:thread-crons  interfaces.agent_protocol.views.thread_crons
*                         /agent-protocol/threads/{thread_id}/runs/stream  agent_protocol:thread-runs-stream  interfaces.agent_protocol.views.thread_runs_stream
*                         /agent-protocol/threads/{thread_id}/runs/wait  agent_protocol:thread-runs-wait  interfaces.agent_protocol.views.thread_runs_wait
*                         /agent-protocol/threads/{thread_id}/runs/{run_id}/join  agent_protocol:thread-run-join  interfaces.agent_protocol.views.thread_run_join
*                         /agent-protocol/threads/{thread_id}/runs/{run_id}/stream  agent_protocol:thread-run-stream  interfaces.agent_protocol.views.thread_run_stream
*                         /agent-protocol/threads/{thread_id}/runs/{run_id}/cancel  agent_protocol:thread-run-cancel  interfaces.agent_protocol.views.thread_run_cancel
*                         /agent-protocol/threads/{thread_id}/runs/{run_id}  agent_protocol:thread-run  interfaces.agent_protocol.views.thread_run
*                         /agent-protocol/threads/{thread_id}/runs  agent_protocol:thread-runs  interfaces.agent_protocol.views.thread_runs
*                         /agent-protocol/threads/{thread_id}  agent_protocol:thread  interfaces.agent_protocol.views.thread
*                         /agent-protocol/runs  agent_protocol:runs  interfaces.agent_protocol.views.runs
*                         /agent-protocol/runs/stream  agent_protocol:runs-stream  interfaces.agent_protocol.views.runs_stream
*                         /agent-protocol/runs/wait  agent_protocol:runs-wait  interfaces.agent_protocol.views.runs_wait
*                         /agent-protocol/runs/cancel  agent_protocol:runs-cancel  interfaces.agent_protocol.views.runs_cancel
*                         /agent-protocol/runs/batch  agent_protocol:runs-batch  interfaces.agent_protocol.views.unsupported
*                         /agent-protocol/runs/crons  agent_protocol:crons  interfaces.agent_protocol.views.crons_create
*                         /agent-protocol/runs/crons/search  agent_protocol:crons-search  interfaces.agent_protocol.views.crons_search
*                         /agent-protocol/runs/crons/count  agent_protocol:crons-count  interfaces.agent_protocol.views.crons_count
*                         /agent-protocol/runs/crons/{cron_id}  agent_protocol:cron  interfaces.agent_protocol.views.cron
*                         /agent-protocol/store[/.*]  agent_protocol:store  interfaces.agent_protocol.views.unsupported
*                         /  dashboard:home  interfaces.console.views.home
*                         /dashboard/  dashboard:index  interfaces.console.views.index
*                         /dashboard/dashboard.js  dashboard:script  interfaces.console.views.script
*                         /dashboard/interrupts/{interrupt_id}/resolve/  dashboard:resolve_interrupt  interfaces.console.views.resolve_interrupt
WS                        /ws/runs/{run_id}[/]  ws-run  interfaces.ws.consumers.RunStreamConsumer
WS                        /ws/agui/{collection}/{object_id}[/]  ws-agui  interfaces.ws.consumers.AGUIConsumer
WS                        /ws/dashboard[/]  ws-dashboard  interfaces.ws.consumers.DashboardConsumer
WS                        /*  ws-not-found  interfaces.ws.consumers.NotFoundConsumer
"""


def _listed() -> str:
    out = StringIO()
    call_command("asteros", "routes", stdout=out)
    return out.getvalue()


def test_the_command_lists_every_route_of_every_door():
    assert _listed() == ROUTES


def test_the_agent_run_route_is_findable():
    lines = [line.split() for line in _listed().splitlines()]
    assert ["POST", "/api/agents/{id}/run", "api:agents-run", "interfaces.http.resources.AgentViewSet.run"] in lines


def test_paths_are_readable_whatever_the_pattern():
    assert readable_path("api/^agents/(?P<id>[^/]+)/run$") == "/api/agents/{id}/run"
    assert readable_path(r"^ws/runs/(?P<run_id>[0-9A-Fa-f-]{32,36})/?$") == "/ws/runs/{run_id}[/]"
    assert readable_path(r"^a/(?P<t>[^/:]+)/configs(?:/(?P<c>[^/]+))?/?$") == "/a/{t}/configs[/{c}][/]"
    assert readable_path(r"^x/\.well-known/card\.json$") == "/x/.well-known/card.json"
    assert readable_path("") == "/*"
