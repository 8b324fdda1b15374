"""The embedding model: where its weights come from, its backends, and distributed embedding."""
