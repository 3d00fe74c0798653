"""Agent Protocol routes, included under ``ASTEROS_AGENT_PROTOCOL_PREFIX`` by
``asteros_site/routes.py`` unless ``ASTEROS_ENABLE_AGENT_PROTOCOL`` is off. The fixed segments
(``search``, ``count``, ``crons``, ...) come before the ids they would otherwise match."""

from django.urls import path, re_path

from interfaces.agent_protocol import views

app_name = "agent_protocol"

ID = r"[^/]{1,200}"

urlpatterns = [
    path("info", views.info, name="info"),
    # assistants
    path(
        "assistants",
        views.unsupported(
            "Creating an assistant here (create agents, stars and workflows through the REST API or the admin)",
            ("POST",),
        ),
        name="assistants",
    ),
    path("assistants/search", views.assistants_search, name="assistants-search"),
    path("assistants/count", views.assistants_count, name="assistants-count"),
    re_path(rf"^assistants/(?P<assistant_id>{ID})/graph$", views.assistant_graph, name="assistant-graph"),
    re_path(rf"^assistants/(?P<assistant_id>{ID})/schemas$", views.assistant_schemas, name="assistant-schemas"),
    re_path(rf"^assistants/(?P<assistant_id>{ID})/subgraphs$", views.assistant_subgraphs, name="assistant-subgraphs"),
    re_path(
        rf"^assistants/(?P<assistant_id>{ID})/subgraphs/(?P<namespace>{ID})$",
        views.assistant_subgraphs,
        name="assistant-subgraph",
    ),
    re_path(rf"^assistants/(?P<assistant_id>{ID})/versions$", views.assistant_versions, name="assistant-versions"),
    re_path(rf"^assistants/(?P<assistant_id>{ID})/latest$", views.assistant_latest, name="assistant-latest"),
    re_path(rf"^assistants/(?P<assistant_id>{ID})$", views.assistant, name="assistant"),
    # threads
    path("threads", views.threads, name="threads"),
    path("threads/search", views.threads_search, name="threads-search"),
    path("threads/count", views.threads_count, name="threads-count"),
    path("threads/prune", views.unsupported("Pruning threads", ("POST",)), name="threads-prune"),
    re_path(rf"^threads/(?P<thread_id>{ID})/copy$", views.thread_copy, name="thread-copy"),
    re_path(rf"^threads/(?P<thread_id>{ID})/state$", views.thread_state, name="thread-state"),
    re_path(
        rf"^threads/(?P<thread_id>{ID})/state/(?P<checkpoint>{ID})$",
        views.unsupported("Reading or updating the state at a checkpoint", ("GET", "POST")),
        name="thread-state-checkpoint",
    ),
    re_path(rf"^threads/(?P<thread_id>{ID})/history$", views.thread_history, name="thread-history"),
    re_path(
        rf"^threads/(?P<thread_id>{ID})/stream$",
        views.unsupported("Streaming a whole thread", ("GET",)),
        name="thread-stream",
    ),
    # runs of a thread
    re_path(rf"^threads/(?P<thread_id>{ID})/runs/crons$", views.thread_crons, name="thread-crons"),
    re_path(rf"^threads/(?P<thread_id>{ID})/runs/stream$", views.thread_runs_stream, name="thread-runs-stream"),
    re_path(rf"^threads/(?P<thread_id>{ID})/runs/wait$", views.thread_runs_wait, name="thread-runs-wait"),
    re_path(
        rf"^threads/(?P<thread_id>{ID})/runs/(?P<run_id>{ID})/join$", views.thread_run_join, name="thread-run-join"
    ),
    re_path(
        rf"^threads/(?P<thread_id>{ID})/runs/(?P<run_id>{ID})/stream$",
        views.thread_run_stream,
        name="thread-run-stream",
    ),
    re_path(
        rf"^threads/(?P<thread_id>{ID})/runs/(?P<run_id>{ID})/cancel$",
        views.thread_run_cancel,
        name="thread-run-cancel",
    ),
    re_path(rf"^threads/(?P<thread_id>{ID})/runs/(?P<run_id>{ID})$", views.thread_run, name="thread-run"),
    re_path(rf"^threads/(?P<thread_id>{ID})/runs$", views.thread_runs, name="thread-runs"),
    re_path(rf"^threads/(?P<thread_id>{ID})$", views.thread, name="thread"),
    # stateless runs
    path("runs", views.runs, name="runs"),
    path("runs/stream", views.runs_stream, name="runs-stream"),
    path("runs/wait", views.runs_wait, name="runs-wait"),
    path("runs/cancel", views.runs_cancel, name="runs-cancel"),
    path("runs/batch", views.unsupported("Creating runs in a batch", ("POST",)), name="runs-batch"),
    path("runs/crons", views.crons_create, name="crons"),
    path("runs/crons/search", views.crons_search, name="crons-search"),
    path("runs/crons/count", views.crons_count, name="crons-count"),
    re_path(rf"^runs/crons/(?P<cron_id>{ID})$", views.cron, name="cron"),
    re_path(r"^store(?:/.*)?$", views.unsupported("The store"), name="store"),
]
