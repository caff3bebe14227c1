"""optimizer/: build time — export, fuse, calibrate, build engines, verify. Pure functions over files."""
