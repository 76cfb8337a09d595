"""faced: finds every face in a photo library, learns who is who, and keeps a folder per person."""

__version__ = "0.1.0"
