#!/usr/bin/env python3
"""The Django project of the end-to-end test (tests/django/test_django_e2e.py); also runnable by hand, see
tests/django/README.md."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopsite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
