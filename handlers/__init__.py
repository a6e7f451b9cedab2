"""The domain. Its composition (every router, every timer kind) lives in ``handlers/app.py``, a module
nothing below it imports; this package file is empty so that importing any part of the domain loads
only what that part needs."""
