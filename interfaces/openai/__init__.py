"""The OpenAI-compatible door: ``/v1/models``, ``/v1/chat/completions`` and ``/v1/responses``,
a translation onto the run service and the event log (docs/openai-compatible.md)."""
