"""The linter: libcst rules that keep the honesty contract true in code people edit.

This path stays light: it never imports mlflow, fastapi, pandas or nbconvert.
"""
