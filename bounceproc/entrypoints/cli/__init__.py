"""Subcommands of the `bounceproc` console command, one module each (adapter layer)."""
