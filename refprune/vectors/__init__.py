"""Golden vectors for other implementations: the built-in cases, their schema and files, users'
own cases, the comparison with its tolerance tiers, the known defects and their diagnosis.
"""

__all__ = ['schema', 'cases', 'files', 'user_cases', 'tolerances', 'compare', 'defects', 'diagnose', 'diagnose_search', 'testing']
