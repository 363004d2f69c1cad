"""``python -m reclight``: the ``reclight`` command with the interpreter you name."""

from reclight.cli import main

main()
