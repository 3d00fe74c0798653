"""LangGraph's Agent Protocol door: assistants, threads and runs translated onto the run kinds,
sessions, the run service, interrupts and the event log (docs/agent-protocol.md)."""
