"""What several test modules share and is not a fixture: test doubles, sample data writers, small models.

Test modules import from here (``from helpers.datasets import ...``; pytest puts tests/ on sys.path), never from
one another. Fixtures live in tests/conftest.py.
"""
