"""``python -m repro`` (and ``torchrun ... -m repro``): the ``repro`` command."""

import sys

from repro.cli import main

sys.exit(main())
