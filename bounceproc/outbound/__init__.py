"""Driven adapters that talk to the outside: webhook delivery, its HTTP client and the SSRF guard."""
