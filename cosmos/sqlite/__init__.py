"""SQLite database backend for embedded mode: writers queue on a lock (see ``base``)."""
