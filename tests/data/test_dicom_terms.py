"""defined_term: a coded DICOM value passes only when it is a defined term of the standard for its attribute."""

import pytest
from pydicom.multival import MultiValue

from medsyn.data.dicom_terms import DEFINED_TERMS, defined_term


@pytest.mark.parametrize(
    ("keyword", "value", "expected"),
    [
        ("Modality", "CT", "CT"),
        ("Modality", "DX ", "DX"),  # CS values are space-padded to even length on disk
        ("Modality", "ct", None),
        ("Modality", "MRN 12345678", None),  # valid CS characters, not a defined term
        ("ViewPosition", "PA", "PA"),
        ("ViewPosition", "MLO", "MLO"),
        ("ViewPosition", "JOHNDOE", None),
        ("ViewPosition", "", None),
        ("PhotometricInterpretation", "MONOCHROME1", "MONOCHROME1"),
        ("PhotometricInterpretation", "PALETTE COLOR", "PALETTE COLOR"),
        ("PhotometricInterpretation", "MONOCHROME3", None),
        ("BodyPartExamined", "CHEST", "CHEST"),
        ("BodyPartExamined", "WARD 7 BED 3", None),
        ("Laterality", "L", "L"),
        ("Laterality", "B", None),  # B (both) is defined for ImageLaterality, not series Laterality
        ("Modality", None, None),
        ("Modality", 5, None),
    ],
)
def test_only_defined_terms_pass(keyword, value, expected):
    assert defined_term(keyword, value) == expected


def test_multi_valued_code_is_never_a_term():
    assert defined_term("ViewPosition", MultiValue(str, ["PA", "SMITH"])) is None


def test_unknown_attribute_is_a_key_error_listing_the_known_ones():
    with pytest.raises(KeyError, match=r"PatientName.*known: \['BodyPartExamined'"):
        defined_term("PatientName", "X")


def test_every_term_is_valid_code_string():
    """PS3.5 6.2: CS is at most 16 characters of upper case letters, digits, space and underscore."""
    for keyword, terms in DEFINED_TERMS.items():
        for term in terms:
            assert 0 < len(term) <= 16 and all(c.isupper() or c.isdigit() or c in " _" for c in term), (keyword, term)
