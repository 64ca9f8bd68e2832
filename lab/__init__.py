"""Lab tooling that is not the service: the native stack runner and its helpers."""
