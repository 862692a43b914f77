"""Use cases: what bounceproc does with events, intake rows and counts (called by the entry points).

They call the pure domain and the storage adapters; they never import an entry point.
"""
