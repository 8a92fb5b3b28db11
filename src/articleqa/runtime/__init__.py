"""Process-wide concerns: stopping promptly, thread limits, giving memory back, timings."""
