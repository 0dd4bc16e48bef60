"""``python -m cocoa`` is the ``cocoa`` command."""

from cocoa.cli import main

main()
