"""Text -> vectors: the embedder seam (base.py), the bundled model, its ONNX copy, and Ray."""
