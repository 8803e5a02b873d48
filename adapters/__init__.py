"""Outside systems behind small Protocols, each with a real and an in-memory implementation."""
