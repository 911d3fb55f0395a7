"""``python -m bench``: see :mod:`bench.cli`."""

import sys

if __name__ == "__main__":  # a spawned child process imports this module too (as __mp_main__)
    from bench.cli import main

    sys.exit(main())
