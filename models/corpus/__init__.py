"""Docstring-to-body corpus extracted from the Python sources installed on this machine."""
