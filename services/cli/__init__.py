"""The `feedback` command (typer): services, topics, index, operations, models, the local stack."""
from services.cli.main import app

__all__ = ["app"]
