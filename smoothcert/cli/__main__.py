"""``python -m smoothcert.cli``: the same as the ``smoothcert`` command."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
