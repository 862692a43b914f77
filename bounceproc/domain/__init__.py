"""The pure domain core of bounceproc.

Domain layer: stdlib and flufl.bounce only. Nothing here imports celery, sqlalchemy,
aiosmtpd, redis or any network library; tests/unit/test_domain_purity.py enforces it.
"""
