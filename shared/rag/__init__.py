"""Retrieval-augmented generation: the knowledge base and how it is searched."""
