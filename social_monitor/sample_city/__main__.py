"""``python -m social_monitor.sample_city``: write the sample city's raw extracts."""

from social_monitor.sample_city.cli import main

raise SystemExit(main())
