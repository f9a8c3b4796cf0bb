"""The learning loop: retrain requests, training runs, model versions."""
