"""Default Jinja2 templates for emitted bundles, and the ``tokeffc init`` starter."""
