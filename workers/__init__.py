"""Celery workers for scale-out: `celery -A workers worker` (the app is workers.celery_app.app)."""
from workers.celery_app import app

__all__ = ["app"]
