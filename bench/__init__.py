"""``make bench``: intake throughput against the bare INSERT+COMMIT limit, and memory."""
