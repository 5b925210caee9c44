"""The dbt command Dagster's dbt resource runs (``social-monitor-dbt``, the resource's ``dbt_executable``).

Everything but ``--version`` is dbt's own entry point (``dbt.cli.main.cli``, what the ``dbt`` script runs). dagster-dbt
asks ``<dbt_executable> --version`` once per run, only to tell dbt Core from dbt Fusion; ``dbt --version`` imports dbt
and asks PyPI for the latest release (about 3-5 s per run, and a network request). Here it answers from the installed
package's metadata in a few milliseconds, in the format of ``dbt --version``'s first lines.
"""

from __future__ import annotations

import sys
from importlib.metadata import version


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        print(f"Core:\n  - installed: {version('dbt-core')}")
        sys.exit(0)
    from dbt.cli.main import cli

    sys.exit(cli())


if __name__ == "__main__":
    main()
