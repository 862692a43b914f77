"""Driving adapters: what starts work in bounceproc (CLI, HTTP API, SMTP sink, acct pipe).

They translate the outside world into calls of the use cases in `bounceproc.app` and hold no rules.
"""
