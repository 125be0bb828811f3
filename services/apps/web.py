"""Templates and static files of the HTML pages the API serves (console, board, opt-out)."""
from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

HERE = Path(__file__).resolve().parent
TEMPLATE_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
# Autoescaping is on for .html (Starlette's default environment).
templates = Jinja2Templates(directory=str(TEMPLATE_DIR))
