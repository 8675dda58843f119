"""``python -m tessera_admin``: the same command as ``tessera-admin``."""

import sys

from tessera_admin.cli import main

sys.exit(main())
