"""Camera motion: 2D matrices and 3D depth reprojection."""
