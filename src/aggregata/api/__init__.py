"""The HTTP API: ``create_app(settings)`` composes thin routers over the services."""
