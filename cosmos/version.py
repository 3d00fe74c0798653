"""The product version, as health, the OpenAPI schema and the agent cards report it."""

VERSION = "0.1.0"
