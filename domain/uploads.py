"""Which uploaded files a submission accepts: by extension, confirmed by content."""

from __future__ import annotations

from pathlib import PurePosixPath

from domain.errors import Invalid

BINARY_SIGNATURES = {
    ".pdf": (b"%PDF-", "application/pdf"),
    ".png": (b"\x89PNG\r\n\x1a\n", "image/png"),
    ".jpg": (b"\xff\xd8\xff", "image/jpeg"),
    ".jpeg": (b"\xff\xd8\xff", "image/jpeg"),
    ".zip": (b"PK\x03\x04", "application/zip"),
    ".docx": (b"PK\x03\x04",
              "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ".pptx": (b"PK\x03\x04",
              "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
}
TEXT_TYPES = {
    ".txt": "text/plain", ".md": "text/markdown", ".csv": "text/csv",
    ".json": "application/json", ".ipynb": "application/x-ipynb+json", ".sql": "text/plain",
    ".py": "text/x-python",
}
MAX_FILENAME = 200


def classify_upload(filename: str, head: bytes) -> str:
    """The content type to store, or Invalid if the file is not an accepted kind."""
    name = PurePosixPath(filename.replace("\\", "/")).name
    if not name or len(name) > MAX_FILENAME:
        raise Invalid("A file name of 1 to 200 characters is required", code="INVALID_FILENAME")
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in BINARY_SIGNATURES:
        signature, content_type = BINARY_SIGNATURES[suffix]
        if not head.startswith(signature):
            raise Invalid(f"The content is not a {suffix} file", code="FILE_CONTENT_MISMATCH")
        return content_type
    if suffix in TEXT_TYPES:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as error:
            # A multi-byte character cut at the end of the sample is fine.
            if error.start < len(head) - 4:
                raise Invalid("Text files must be UTF-8", code="FILE_CONTENT_MISMATCH") from None
        return TEXT_TYPES[suffix]
    accepted = ", ".join(sorted([*BINARY_SIGNATURES, *TEXT_TYPES]))
    raise Invalid(f"Accepted file types: {accepted}", code="UNSUPPORTED_FILE_TYPE")
