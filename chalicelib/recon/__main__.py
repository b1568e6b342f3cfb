"""``python -m chalicelib.recon``: see ``chalicelib.recon.cli``."""
import sys

from chalicelib.recon.cli import main

sys.exit(main())
