"""Imported by paths.py from a script.include directory."""
VALUE = 7
