"""The Flask class opsmgr runs on: one that cannot be put in debug mode."""
from flask import Flask

DEBUG_REFUSED = "opsmgr never runs with Flask debug mode: it exposes code execution"


class OpsmgrFlask(Flask):
    """Flask that refuses debug mode however it is asked for: DEBUG in the configuration (create_app checks
    it), FLASK_DEBUG=1 or `flask --debug ...` (the CLI sets `app.debug` after loading the app)."""

    @Flask.debug.setter
    def debug(self, value):
        if value:
            raise RuntimeError(DEBUG_REFUSED)
        Flask.debug.fset(self, value)
