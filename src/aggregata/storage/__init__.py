"""Storage engines: the only modules that talk to a database."""
