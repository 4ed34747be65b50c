# The project's metadata (name, version, dependencies, commands) lives in pyproject.toml only; setuptools reads it
# from there. This file is here for the tools and habits that look for a setup.py beside the package, as they did
# in keras-retinanet: `pip install -e .` and `python setup.py --version` both work with it.
from setuptools import setup

setup()
