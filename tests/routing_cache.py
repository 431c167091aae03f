"""One cache of werkzeug's compiled URL builders for every app the suite builds.

werkzeug compiles a Python function for each URL rule (to build URLs: url_for) from an AST every
time a rule is added to an app's url_map. The suite builds an app for every test, so that compiling
was most of create_app's time. The function depends only on the rule's parsed parts and whether it
appends unknown arguments (it reaches the rule's converters through the rule it is bound to), so
rules with the same parts share one compiled function; rules with defaults are compiled as usual.
Routing and URL building are unchanged.
"""
from werkzeug.routing.rules import Rule

_BUILDERS = {}
_compile = Rule._compile_builder


def _shared_builder(self, append_unknown=True):
    if self.defaults:
        return _compile(self, append_unknown)
    key = (self.rule, tuple(self._trace), append_unknown)
    builder = _BUILDERS.get(key)
    if builder is None:
        builder = _BUILDERS[key] = _compile(self, append_unknown)
    return builder


def share_compiled_url_builders():
    Rule._compile_builder = _shared_builder
