"""The Milvus store: the same interface kept in Milvus (Lite or a server)."""
