"""`python -m pyvrrpd` runs the command line."""

from pyvrrpd.cli import main

raise SystemExit(main())
