"""Mode runners: stills, 2D/3D animation, video input, interpolation."""
