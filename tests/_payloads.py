"""Live malicious pickle payloads: unpickling one writes a marker file (the safe loaders must never do it)."""

from __future__ import annotations

import os
import shlex


class RunsCommand:
    """Unpickling this runs a shell command that writes a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"echo pwned > {shlex.quote(self.marker)}",))


class WritesFile:
    """Unpickling this writes a marker file from Python."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))
