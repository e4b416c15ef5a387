"""Where weights come from: the hubs (offline detection, the geocli cache folder, reading weight
files safely), weights that ship in pip packages, and whether a model's weights are on this
machine (``geocli models``) — all without importing torch."""
