"""Defined terms of the DICOM standard for the coded attributes ``export_dicom`` may take from a reference.

A coded attribute (value representation CS) can still carry text a site typed into it: a ViewPosition of
``SMITH JOHN`` is valid CS. So a value is copied only when it is one of the terms the standard defines for
that attribute (:func:`defined_term`); anything else is dropped, never "cleaned". A table may be a subset
of the standard's list (BodyPartExamined): a term missing here is dropped, which is always safe.

Sources (DICOM PS3.3 / PS3.16, 2024 editions):

- Modality (0008,0060): PS3.3 C.7.3.1.1.1 "Modality", Defined Terms (retired terms left out).
- PhotometricInterpretation (0028,0004): PS3.3 C.7.6.3.1.2, Defined Terms.
- ViewPosition (0018,5101): PS3.3 C.8.1.1 (CR Series) / C.8.11.5 (DX Positioning) Defined Terms, plus the
  mammography view abbreviations of PS3.16 CID 4014 used by MG images.
- Laterality (0020,0060): PS3.3 C.7.3.1 (General Series), Enumerated Values.
- BodyPartExamined (0018,0015): PS3.16 Annex L (Correspondence of Anatomic Region Codes and Body Part
  Examined Defined Terms), the common subset below.
"""

from __future__ import annotations

__all__ = ["DEFINED_TERMS", "defined_term"]

DEFINED_TERMS: dict[str, frozenset[str]] = {
    "Modality": frozenset(
        "ANN AR ASMT AU BDUS BI BMD CFM CR CT CTPROTOCOL DG DMS DOC DX ECG EEG EMG EOG EPS ES FID GM HC HD IO "
        "IOL IVOCT IVUS KER KO LEN LS M3D MG MR NM OAM OCT OP OPM OPT OPTBSV OPTENF OPV OSS OT PA PLAN POS PR "
        "PT PX REG RESP RF RG RTDOSE RTIMAGE RTINTENT RTPLAN RTRAD RTRECORD RTSEGANN RTSTRUCT RWV SEG SM SMR "
        "SR SRF STAIN TEXTUREMAP TG US VA XA XAPROTOCOL XC".split()
    ),
    "PhotometricInterpretation": frozenset(
        ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "RGB", "YBR_FULL", "YBR_FULL_422", "YBR_PARTIAL_420",
         "YBR_ICT", "YBR_RCT", "XYB")
    ),
    "ViewPosition": frozenset(
        "AP PA LL RL RLD LLD RLO LLO "  # CR / DX
        "CC MLO ML LM LMO FB SIO ISO XCC XCCL XCCM AT".split()  # mammography (CID 4014 abbreviations)
    ),
    "Laterality": frozenset({"R", "L"}),
    "BodyPartExamined": frozenset(
        "ABDOMEN ABDOMENPELVIS ANKLE AORTA ARM AXILLA BACK BLADDER BRAIN BREAST BRONCHUS BUTTOCK CALCANEUS "
        "CALF CAROTID CEREBELLUM CERVIX CHEST CHESTABDOMEN CHESTABDPELVIS CLAVICLE COCCYX COLON CORONARY "
        "CSPINE CTSPINE EAR ELBOW ESOPHAGUS EXTREMITY EYE FACE FEMUR FINGER FOOT FOREARM GALLBLADDER HAND "
        "HEAD HEADNECK HEART HIP HUMERUS JAW KIDNEY KNEE LARYNX LEG LIVER LSPINE LSSPINE LUNG MEDIASTINUM "
        "NECK NECKCHEST NECKCHESTABDOMEN NECKCHESTABDPELV ORBIT OVARY PANCREAS PAROTID PELVIS PENIS PHARYNX "
        "PROSTATE RECTUM RIB SCROTUM SHOULDER SINUS SKULL SPINE SPLEEN SSPINE STERNUM STOMACH TESTIS THIGH "
        "THUMB THYMUS THYROID TIBIA TLSPINE TOE TONGUE TRACHEA TSPINE ULNA URETER URETHRA UTERUS WHOLEBODY "
        "WRIST ZYGOMA".split()
    ),
}


def defined_term(keyword: str, value: object) -> str | None:
    """``value`` (stripped, as DICOM stores CS padded) if it is a defined term of ``keyword``, else None.

    Multi-valued or non-string values are never defined terms here (none of these attributes is
    multi-valued in the exported object), so they yield None too.
    """
    if keyword not in DEFINED_TERMS:
        raise KeyError(f"no defined terms known for DICOM attribute {keyword!r}; known: {sorted(DEFINED_TERMS)}")
    if not isinstance(value, str):
        return None
    text = value.strip(" \x00")
    return text if text in DEFINED_TERMS[keyword] else None
