"""The dashboard: one page at `/` (plain ES modules and CSS shipped in `static/`, no build
step, nothing fetched from elsewhere) over the public API, and `GET /pipelines` for its form.

`python -m jobcast.dashboard.screenshot` regenerates docs/dashboard.png (README, Dashboard).
"""

from jobcast.dashboard.routes import pipeline_names, router

__all__ = ["pipeline_names", "router"]
