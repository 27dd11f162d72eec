"""`python -m tork_ray.cli`: the tork-ray command."""

import sys

from tork_ray.cli import main

sys.exit(main())
