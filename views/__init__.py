"""nst.views: what the network sees. Top-9 patches per unit with receptive fields, per-layer reconstructions, alpha/beta
sweep grids and run reports, drawn with Pillow. Runtime only: no torch; every function takes arrays or a loaded
engine Model and returns arrays or Pillow images (no printing, no files: the CLI writes)."""
