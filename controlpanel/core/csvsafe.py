"""CSV that a spreadsheet opens as data and that carries no secret: the one writer every export uses."""

import csv

from controlpanel.targets.secrets import all_secret_values, redact

# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value, secrets=()) -> str:
    """The value as text, redacted, prefixed with a quote when a spreadsheet would evaluate it
    (numbers stay numbers)."""
    if isinstance(value, int | float):
        return str(value)
    text = redact("" if value is None else str(value), secrets) if secrets else ("" if value is None else str(value))
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class SafeWriter:
    """csv.writer whose cells are redacted and escaped; writerow returns what the file's write returned."""

    def __init__(self, fh):
        self._writer = csv.writer(fh)
        self._secrets = all_secret_values()

    def writerow(self, row):
        return self._writer.writerow([safe_cell(value, self._secrets) for value in row])


def writer(fh) -> SafeWriter:
    return SafeWriter(fh)
