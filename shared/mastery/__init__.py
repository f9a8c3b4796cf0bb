"""Mastery: what a student knows, per topic (Bayesian Knowledge Tracing state)."""
