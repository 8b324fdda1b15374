"""The embedded store: FAISS + SQLite segments in one folder, the default."""
