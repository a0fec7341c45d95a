"""``python -m flask_toucan.sandbox --port 5100 ...`` (see ``--help``)."""

from .cli import main

main()
