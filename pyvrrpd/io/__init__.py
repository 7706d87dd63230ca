"""pyvrrpd."""
