"""Re-export of :mod:`medsyn.io.atomic` (the writers moved to the bottom layer; import them from there)."""

from medsyn.io.atomic import (
    TEMP_SUFFIX,
    torch_save_atomic,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)

__all__ = ["TEMP_SUFFIX", "write_bytes_atomic", "write_text_atomic", "write_json_atomic", "torch_save_atomic"]
