"""Adapters: thin translation between the outside world (SQL, Celery, SMTP, HTTP, stdin) and the domain."""
