"""``python -m bot.cli``: the same entry point as the ``craftlink`` console script."""

from bot.cli.main import main

raise SystemExit(main())
