"""Which subject (patient) each file of a folder source belongs to, so a split keeps a subject whole.

    subject_column="subject"        a column of the labels CSV:  path,label,subject
    subject_pattern=r"(sub-\\d+)_"   a regular expression searched in the file's path relative to the folder;
                                     the subject is its group named ``subject``, else its first group, else
                                     the whole match

Subjects are held as hashes (``subject:<16 hex digits>``), so nothing downstream keeps the subject's name.

Bad input: both options, a pattern that is not a regular expression, a subject column missing from the CSV
-> ValueError naming the option or the CSV; a file the pattern does not match or an empty subject cell ->
ValueError naming the file or the CSV row (skipped with ``on_error="skip"``, by the caller).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from medsyn.data.labels_csv import find_key_column, read_csv_records

__all__ = [
    "SubjectOptions", "subject_options", "read_subject_column", "subject_from_pattern", "subject_group",
]


@dataclass(frozen=True)
class SubjectOptions:
    """A checked ``subject_column`` / ``subject_pattern`` pair; ``group_key`` names it for the manifest."""

    column: str | None
    pattern: re.Pattern[str] | None

    @property
    def group_key(self) -> str | None:
        if self.column is not None:
            return f"subject_column:{self.column}"
        return "subject_pattern" if self.pattern is not None else None


def subject_options(
    subject_column: str | None, subject_pattern: str | None, *, labels_csv: str | os.PathLike | None = None,
    column_allowed: bool = True,
) -> SubjectOptions:
    """Check the subject options of a folder source (see module doc)."""
    if subject_column is not None and subject_pattern is not None:
        raise ValueError("give subject_column or subject_pattern, not both")
    if subject_column is not None:
        if not column_allowed or labels_csv is None:
            raise ValueError(f"subject_column needs labels_csv (a CSV with a {subject_column!r} column)")
        if not isinstance(subject_column, str) or not subject_column.strip():
            raise ValueError(f"subject_column must be a column name, got {subject_column!r}")
    pattern = None
    if subject_pattern is not None:
        if not isinstance(subject_pattern, str) or not subject_pattern:
            raise ValueError(f"subject_pattern must be a regular expression, got {subject_pattern!r}")
        try:
            pattern = re.compile(subject_pattern)
        except re.error as error:
            raise ValueError(
                f"subject_pattern {subject_pattern!r} is not a valid regular expression: {error}"
            ) from error
    return SubjectOptions(subject_column, pattern)


def subject_group(subject: str) -> str:
    """The group a split uses for ``subject``: a hash, so the subject's name is not kept."""
    return f"subject:{hashlib.sha256(subject.encode('utf-8')).hexdigest()[:16]}"


def read_subject_column(
    csv_path: str | os.PathLike, subject_column: str, *, key_column: str | None = None
) -> dict[str, tuple[str, int]]:
    """key (as the labels CSV reader keys rows) -> (subject, CSV row number, 1 = first data row).

    The key column is ``key_column`` or, without it, found as the labels CSV reader finds it
    (:func:`medsyn.data.labels_csv.find_key_column`). An empty subject is returned as "" (the caller reports
    the row).
    """
    csv_path = Path(csv_path)
    header, records = read_csv_records(csv_path)
    if subject_column not in header:
        raise ValueError(
            f"labels CSV {csv_path}: missing subject column {subject_column!r} (columns: {header})"
        )
    key_column = find_key_column(csv_path, header, key_column)
    subjects: dict[str, tuple[str, int]] = {}
    for row_number, record in enumerate(records, start=1):
        key = (record.get(key_column) or "").strip()
        if key and key not in subjects:
            subjects[key] = ((record.get(subject_column) or "").strip(), row_number)
    return subjects


def subject_from_pattern(pattern: re.Pattern[str], relative: str | os.PathLike) -> str:
    """The subject ``pattern`` finds in ``relative`` (path relative to the folder, matched in POSIX form).

    ValueError (to be prefixed with the file by the caller) when it finds none.
    """
    posix = Path(relative).as_posix()
    match = pattern.search(posix)
    subject = None
    if match is not None and "subject" in pattern.groupindex:
        subject = match.group("subject")
    elif match is not None:
        subject = match.group(1) if pattern.groups else match.group(0)
    if not subject:  # no match, or an optional group that took part in no match
        raise ValueError(f"subject_pattern {pattern.pattern!r} does not match its path {posix!r}")
    return subject
