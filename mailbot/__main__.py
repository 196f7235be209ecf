"""`python -m mailbot` runs the CLI."""

from mailbot.cli import main

main()
