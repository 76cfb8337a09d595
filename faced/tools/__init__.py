"""Tools beside the pipeline: `faced eval` and its metrics, exports and imports."""
