"""Evidence for where a photo was taken, read from the photo itself without a trained model.

``exif`` (GPS, camera, capture time), ``scripts`` (writing systems in OCR text), ``text_hints``
(country-code TLDs, phone prefixes, street-type words), ``gazetteer`` (place names in OCR text)
and ``combine`` (ranking candidate locations with probabilities and an explicit unknown remainder).
"""
