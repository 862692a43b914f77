"""bounceproc: bounce and feedback-loop processing for high-volume senders."""

__version__ = "0.1.0"     # the only place the version is written (pyproject.toml reads it)
