"""``python -m labclip_utils``: see :mod:`labclip_utils.cli`."""

import sys

from labclip_utils.cli import main

sys.exit(main())
