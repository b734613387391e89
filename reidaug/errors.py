"""Errors that the CLI shows to the user as one line."""


class UserError(Exception):
    """A problem with the user's input (paths, flags, files), shown as ``Error: <message>``."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during long work, with what it means for the user (what a resume will redo)."""
