"""``python -m tinyalex ...`` is the ``tinyalex`` command."""
from .cli import main

raise SystemExit(main())
