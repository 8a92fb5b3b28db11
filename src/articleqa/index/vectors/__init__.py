"""Dense vector search engines behind one interface (base.py): local FAISS, or Milvus."""
