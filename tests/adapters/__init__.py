"""Tests of the I/O adapters, against real servers where there is I/O."""
