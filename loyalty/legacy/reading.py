"""Legacy CSV files as old systems write them: the encoding, the delimiter and the header row are found,
then records are streamed one at a time (constant memory, quoted fields may hold newlines)."""

import codecs
import csv
import io
from dataclasses import dataclass

from django.utils.translation import gettext as _

from loyalty.core.exceptions import ApplicationError

DELIMITERS = (",", ";", "\t")
SAMPLE_BYTES = 64 * 1024
SCAN_BYTES = 1024 * 1024


@dataclass(frozen=True)
class FileFormat:
    encoding: str
    delimiter: str

    @property
    def delimiter_name(self) -> str:
        return {",": _("comma"), ";": _("semicolon"), "\t": _("tab")}[self.delimiter]


def _bom_encoding(head: bytes) -> str | None:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # the codec reads the BOM and drops it
    return None


def _utf16_without_bom(head: bytes) -> str | None:
    """ASCII text in UTF-16 has a NUL in every other byte; no CSV in an 8-bit encoding has NULs."""
    sample = head[:4000]
    if len(sample) < 4 or b"\x00" not in sample:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if odd > len(sample) / 4 and even == 0:
        return "utf-16-le"
    if even > len(sample) / 4 and odd == 0:
        return "utf-16-be"
    return None


def _is_utf8(stream) -> bool:
    """Decodes the whole file as strict UTF-8 in 1 MB blocks (about a second for a million members)."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    stream.seek(0)
    try:
        while block := stream.read(SCAN_BYTES):
            decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    finally:
        stream.seek(0)
    return True


def detect_encoding(stream) -> str:
    """UTF-8 with or without BOM, UTF-16 with or without BOM, else Windows-1252 (which reads Latin-1 text
    the same way, apart from a few control codes no one types)."""
    stream.seek(0)
    head = stream.read(SAMPLE_BYTES)
    stream.seek(0)
    encoding = _bom_encoding(head) or _utf16_without_bom(head)
    if encoding:
        return encoding
    if _is_utf8(stream):
        return "utf-8"
    try:
        head.decode("cp1252")
    except UnicodeDecodeError:
        return "latin-1"  # the five bytes cp1252 leaves undefined
    return "cp1252"


def detect_delimiter(header_line: str) -> str:
    """The delimiter that splits the header row into the most columns (a legacy header names every column)."""
    counts = {delimiter: header_line.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


class LegacyFile:
    """A binary file object (an upload, an open path) read as CSV records."""

    def __init__(self, stream, *, encoding: str | None = None, delimiter: str | None = None):
        self.stream = stream
        self.size = self._size(stream)
        encoding = encoding or detect_encoding(stream)
        if delimiter is None:
            stream.seek(0)
            text = io.TextIOWrapper(stream, encoding=encoding, newline="", errors="replace")
            try:
                first_line = text.readline()
            finally:
                text.detach()
            delimiter = detect_delimiter(first_line)
        self.format = FileFormat(encoding=encoding, delimiter=delimiter)

    @staticmethod
    def _size(stream) -> int:
        stream.seek(0, io.SEEK_END)
        size = stream.tell()
        stream.seek(0)
        return size

    def position(self) -> int:
        """Bytes read so far (ahead of the record being handled by at most one read buffer)."""
        return self.stream.tell()

    def records(self):
        """(headers, iterator of (row number, cells)); row 1 is the header row, as in a spreadsheet."""
        self.stream.seek(0)
        text = io.TextIOWrapper(self.stream, encoding=self.format.encoding, newline="")
        reader = csv.reader(text, delimiter=self.format.delimiter, quotechar='"', strict=False)
        try:
            headers = next(reader)
        except StopIteration:
            text.detach()
            raise ApplicationError(_("The file is empty: it has no header row."), code="empty_file") from None
        except (UnicodeDecodeError, csv.Error) as error:
            text.detach()
            raise self._unreadable(error) from error
        headers = [header.strip() for header in headers]

        def rows():
            row_no = 1
            try:
                for cells in reader:
                    row_no += 1
                    if not any(cell.strip() for cell in cells):
                        continue  # blank lines, often at the end of an export
                    yield row_no, cells
            except (UnicodeDecodeError, csv.Error) as error:
                raise self._unreadable(error, row_no=row_no + 1) from error
            finally:
                text.detach()  # the caller's file stays open

        return headers, rows()

    def _unreadable(self, error, row_no: int | None = None) -> ApplicationError:
        if isinstance(error, UnicodeDecodeError):
            message = _("The file could not be read as %(encoding)s text.") % {"encoding": self.format.encoding}
        else:
            message = _("The file is not valid CSV: %(error)s.") % {"error": error}
        if row_no:
            message = _("Row %(row)s: %(message)s") % {"row": row_no, "message": message}
        return ApplicationError(message, code="unreadable_file")

    def preview(self, count: int = 5) -> tuple[list[str], list[list[str]]]:
        headers, rows = self.records()
        sample = []
        for _row_no, cells in rows:
            if len(sample) == count:
                break
            sample.append(cells)
        rows.close()  # the rest of the file is not read
        self.stream.seek(0)
        return headers, sample
