"""The tutor chat: the small models decide, retrieval grounds, the LLM only writes."""
