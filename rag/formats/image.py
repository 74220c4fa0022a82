"""Images (.png, .jpg, .tiff) read by OCR (rag.formats.ocr); each frame of a multi-page TIFF
is a page. Converted to 8-bit grey PNG first: one format tesseract always reads, whatever the
file's own mode (palette, CMYK, 16-bit)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from rag.config import get_settings
from rag.errors import BackendError, UnreadableDocument
from rag.formats.ocr import INSTALL_HINT, tesseract
from rag.models import Element

_MAX_FRAMES = 200


def partition(path: Path) -> list[Element]:
    settings = get_settings().ocr
    if not settings.enabled:
        raise UnreadableDocument("an image is read by OCR, and OCR is not enabled (ocr.enabled)")
    if shutil.which("tesseract") is None:
        raise BackendError(f"OCR needs tesseract, not installed: {INSTALL_HINT}", backend="ocr")
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            dpi = image.info.get("dpi", (0, 0))[0]
            frames = []
            for number, picture in enumerate(ImageSequence.Iterator(image), start=1):
                if number > _MAX_FRAMES:
                    raise UnreadableDocument(f"more than {_MAX_FRAMES} pages in one image file")
                png = io.BytesIO()
                picture.convert("L").save(png, "PNG")
                frames.append(png.getvalue())
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise UnreadableDocument(f"corrupt or invalid image ({type(exc).__name__}: {exc})") from exc
    resolution = int(dpi) if dpi and dpi >= 70 else None
    elements: list[Element] = []
    for number, frame in enumerate(frames, start=1):
        found = tesseract(frame, number, dpi=resolution, settings=settings)
        elements += (
            found if len(frames) > 1 else [e.model_copy(update={"page": None}) for e in found]
        )
    return elements
