"""The command line shared by the analysis scripts that read run folders."""

import sys
from pathlib import Path


def main_over_runs(argv, doc: str, script: str, usable, needs: str, render) -> int:
    """Print ``render(dirs)`` for the run folders named in ``argv`` (``sys.argv[1:]`` when
    None); the usage (``doc``) without any, and exit status 2 naming the first folder that
    ``usable(path)`` refuses (``needs`` says what it lacks)."""
    dirs = [Path(a) for a in (argv if argv is not None else sys.argv[1:])]
    if not dirs:
        print(doc)
        return 2
    for d in dirs:
        if not usable(d):
            print(f"{script}: {d} is not {needs}", file=sys.stderr)
            return 2
    print(render(dirs))
    return 0
