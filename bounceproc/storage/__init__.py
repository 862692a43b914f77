"""Driven adapters for the database: SQLAlchemy tables, stores and the counts they keep."""
