"""``python -m tinyalex.bench``: the same as ``tinyalex bench``."""
import sys

from .cli import main

sys.exit(main())
