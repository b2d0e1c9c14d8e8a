"""Pure SQL construction: plans and mappings in, sqlglot expression trees out.

Nothing here performs IO or reads settings; engines in ``storage`` render and run the trees.
"""
