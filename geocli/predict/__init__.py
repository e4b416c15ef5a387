"""Prediction: geolocators (checkpoint, default), the model inputs built from photos, zero-shot CLIP."""
