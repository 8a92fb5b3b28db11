"""Text in words and sentences: sentence spans, passages (chunking), and the BM25 side of search."""
