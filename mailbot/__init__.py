"""mailbot: automates the Trade Assurance support mailboxes."""

__version__ = "0.1.0"
