"""`python -m articleqa` runs the command line."""

from articleqa.cli import run

raise SystemExit(run())
