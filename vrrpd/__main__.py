"""``python -m vrrpd`` runs the daemon (same as the ``vrrpd`` command)."""

import sys

from vrrpd.cli.vrrpd_main import main

sys.exit(main())
