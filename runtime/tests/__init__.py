"""nb2prod-runtime's tests: a package of their own, so that their conftest and the repository's
(tests/conftest.py, imported by name there) never meet under one module name."""
