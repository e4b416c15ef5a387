"""``geocli serve``: a local web viewer and JSON API over one loaded model."""
