"""Models of the loop, each an importable module of typed functions over pandas frames.

``clv`` (BG/NBD + Gamma-Gamma customer lifetime value), ``ab`` (A/B and campaign-lift analysis),
``registry`` (promotion gate over MLflow registry aliases), ``tracking`` (MLflow store, server and
lineage tags). Importing any of them has no side effects; see docs/models.md.
"""
