"""Routing rules: the supervisors' rule files as data (schema), the named conditions (predicates) and
the evaluation that turns the facts of one message into a route with its trace (engine)."""
