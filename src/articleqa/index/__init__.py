"""The index on disk: immutable segments, the snapshot a manifest names, writes, merges, builds.

vectors/ holds the dense search engines (local FAISS, or a Milvus server)."""
