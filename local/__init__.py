"""Everything for running cognitive-core on one laptop: server, tokens, demo data."""
