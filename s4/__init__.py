"""S4: an S3-compatible gateway that stores every object compressed in the S4 format."""

__version__ = "0.1.0"
