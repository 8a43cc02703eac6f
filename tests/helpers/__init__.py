"""Helpers shared by the test modules (importable as `helpers.*`: tests/conftest.py puts tests/ on sys.path)."""
