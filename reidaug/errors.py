"""Errors that the CLI shows to the user as one line."""


class UserError(Exception):
    """A problem with the user's input (paths, flags, files), shown as ``Error: <message>``."""
