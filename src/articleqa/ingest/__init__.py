"""Files, documents and web links -> Article."""
