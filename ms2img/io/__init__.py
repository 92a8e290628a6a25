"""Readers that turn every supported input format into the canonical events table (see ``schema``)."""
