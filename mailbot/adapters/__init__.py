"""I/O edges, one library each, behind the Protocols in ports.py."""
