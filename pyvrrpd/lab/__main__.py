"""``python -m pyvrrpd.lab`` runs the demo (see :mod:`pyvrrpd.lab.demo`)."""

from pyvrrpd.lab.demo import main

raise SystemExit(main())
