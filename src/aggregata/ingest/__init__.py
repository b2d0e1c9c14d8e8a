"""Ingestion: documents and events from HTTP bodies and files into collections."""
