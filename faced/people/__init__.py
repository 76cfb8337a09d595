"""The pure core: faces to clusters to people with permanent ids. numpy, SciPy, scikit-learn
and faiss only; nothing else of faced, no file, no database (an import-linter contract)."""
