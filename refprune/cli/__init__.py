"""The ``refprune`` command: its subcommands, and the options generated from the configuration
dataclasses.
"""

__all__ = ['main', 'options', 'vectors']
