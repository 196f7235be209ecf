"""The staff console: a Starlette app over the case-work services (no store, no adapters)."""
