"""Helpers without mathematics: atomic result files and the configuration-field options.
"""

__all__ = ['io', 'options']
