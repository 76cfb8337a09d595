"""The stages assembled: planning a scan, feeding workers, recording, re-clustering,
publishing. Shared by `faced scan`, the daemon and `faced eval`; the one layer that may use
every stage (faces, store, people, publish)."""
