"""One in-memory Jinja bytecode cache for every app the suite builds.

Each app has its own Jinja environment, so without this every test compiles again each template
it renders. Jinja keys the cache by template and checks the source's checksum, so a template that
changes is compiled afresh; rendering is unchanged.
"""
from jinja2 import BytecodeCache


class MemoryBytecodeCache(BytecodeCache):
    def __init__(self):
        self._code = {}

    def load_bytecode(self, bucket):
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket):
        self._code[bucket.key] = bucket.bytecode_to_string()


TEMPLATES = MemoryBytecodeCache()


def share_compiled_templates(app):
    app.jinja_env.bytecode_cache = TEMPLATES
    return app
