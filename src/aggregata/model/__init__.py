"""Pure data model: mappings, field types and document validation."""
