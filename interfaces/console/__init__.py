"""The live dashboard at /dashboard/ (staff): runs, agents, charts and run streams, all over
websockets (``ws/dashboard/`` and ``ws/runs/{id}/``). See docs/dashboard.md."""
