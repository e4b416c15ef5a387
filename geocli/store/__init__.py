"""What geocli writes and reads back: checkpoint folders (and the checks on what a checkpoint may
hold), training run folders and their lock, the embedding cache, and the marker that says a folder
is geocli's own (geocli replaces or deletes only those)."""
