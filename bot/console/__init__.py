"""The staff console (docs/console.md). ``bot/console/app.py::setup`` mounts its pages; this package
file imports nothing, so importing any one console module (``bot.keys`` imports ``live``) does not
pull in every page and, through them, ``bot.keys`` again."""
