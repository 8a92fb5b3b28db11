"""The chat web UI (Gradio): its server, page, event handlers and rendering."""

import os

# Set before any module here imports gradio. No phoning home; and Gradio's queue would rebuild a
# summary of its last 10,000 events after every event, for a monitoring page we do not serve
# (its cost under load: docs/reliability.md): keep 100 events, summarise never.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "100")
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(2**62))
