"""The pure core: reading, deciding and planning replies. No I/O, no clock, no settings."""
