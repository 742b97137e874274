"""Database layer: models, engine and sessions, migrations, dialect fast paths."""
