"""The LLM router: providers, fallback, retries, breakers, costs, structured output, usage log.

The orchestrator needs only what is exported here; a provider's module is imported when
the router is built from the settings, so importing this package is cheap.
"""

from shared.llm.errors import LLMError, LLMUnavailableError, ProviderError, StructuredOutputError
from shared.llm.generation_log import log_failure, log_generation
from shared.llm.router import LLMRouter, get_router, reset_router
from shared.llm.types import Attempt, Generation, Grounding, Message, Prompt, Source, StreamReset

__all__ = [
    "Attempt",
    "Generation",
    "Grounding",
    "LLMError",
    "LLMRouter",
    "LLMUnavailableError",
    "Message",
    "Prompt",
    "ProviderError",
    "Source",
    "StreamReset",
    "StructuredOutputError",
    "get_router",
    "log_failure",
    "log_generation",
    "reset_router",
]
