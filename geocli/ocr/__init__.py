"""OCR: engines that read text boxes from photos, and the text embedder for the OCR branch."""
from geocli.ocr.base import (OCR_ENGINES, OCREngine, TextBox, boxes_to_text, build_ocr_engine, read_text, reading_order,
                             rescale_boxes, shrink_for_ocr, text_records)
from geocli.ocr import engines  # noqa: F401,E402  (registers rapidocr, easyocr, paddleocr; imports nothing heavy)

__all__ = ["OCR_ENGINES", "OCREngine", "TextBox", "boxes_to_text", "build_ocr_engine", "read_text", "reading_order",
           "rescale_boxes", "shrink_for_ocr", "text_records"]
