"""keras-retinanet's ``preprocessing.csv_generator``: the CSV reader. The code is
:mod:`keras_retinanet.readers.csv_generator`."""

from ..readers.csv_generator import CSVGenerator, read_classes_file
from ..readers.text_files import read_text_file

__all__ = ["CSVGenerator", "read_classes_file", "read_text_file"]
