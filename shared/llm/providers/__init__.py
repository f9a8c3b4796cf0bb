"""LLM providers: one module per back end, each translating its SDK into ProviderResult/ProviderError."""
