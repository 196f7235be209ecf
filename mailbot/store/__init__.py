"""Persistence: SQLModel tables, the engine factory and every query."""
