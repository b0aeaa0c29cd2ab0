"""``python -m conformity`` = the ``usine`` command."""

from conformity.cli import main

main()
