"""Files to faces: everything a worker process imports (decoding, detection, description,
video frames, the process pool). Nothing here imports the store, the clustering, the
publishing or the service (import-linter contracts), so a worker stays small."""
