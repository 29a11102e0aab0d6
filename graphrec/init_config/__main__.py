"""``python -m graphrec.init_config``: the same as ``graphrec init``."""

import sys

from graphrec.init_config.render import main

sys.exit(main())
