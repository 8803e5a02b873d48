"""HTML renderings of the operator's view (`views/`): live pages for the daemon, one-file replay reports."""

from ops.web.pages import render_date, render_index, render_report

__all__ = ["render_date", "render_index", "render_report"]
