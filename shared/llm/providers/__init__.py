"""LLM providers: one module per back end, each turning its API's answers and failures into
ProviderResult/ProviderError (the hosted ones over HTTP through rest.py)."""
