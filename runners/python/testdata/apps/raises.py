"""Fails at import time, from the app's own line 2."""
raise RuntimeError("config missing: %s" % "DATABASE_URL")
