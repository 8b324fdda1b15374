"""The user-facing shells: the web chat and the command line."""
