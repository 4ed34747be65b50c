"""Reading the text files of datasets (annotations, class lists, image sets) with errors that name the file and line."""

import csv
import io
import os
from typing import Iterator, List, Tuple

from ..errors import DatasetError


def read_text_file(path, what: str, allow_empty: bool = False) -> str:
    """Whole text of a UTF-8 file, with clear errors.

    Args:
        path: the file.
        what: what the file is, for messages ('annotations file', 'classes file', ...).
        allow_empty: return '' for an empty file instead of raising.

    Returns:
        the text (a UTF-8 byte order mark is removed).

    Raises:
        DatasetError: the file is missing, is a folder, is empty or is not UTF-8.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DatasetError(path, f"{what} not found")
    if os.path.isdir(path):
        raise DatasetError(path, f"{what} is a folder, expected a file")
    with open(path, "rb") as file:
        data = file.read()
    if not data.strip():
        if allow_empty:
            return ""
        raise DatasetError(path, f"{what} is empty")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DatasetError(
            path,
            f"not UTF-8 text (byte 0x{data[error.start]:02x} cannot be decoded); save the {what} as UTF-8",
            line=line,
        ) from None


def csv_rows(path, text: str) -> Iterator[Tuple[int, List[str]]]:
    """(line, row) of a CSV text; DatasetError where the csv module gives up (e.g. a field over its size limit)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=",")
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise DatasetError(path, f"not readable as CSV ({error})", line=reader.line_num) from None
        yield reader.line_num, row
