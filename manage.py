#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asteros_site.settings")
    from django.core.management import execute_from_command_line

    from asteros_site.options import exit_on_bad_options

    # A bad ASTEROS_* option: its one line and exit 1 (the traceback with --traceback).
    with exit_on_bad_options(sys.argv):
        execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
