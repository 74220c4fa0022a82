"""Guards on what enters the prompt and what leaves in an answer.

`injection`: retrieved passages screened for text aimed at the model (flag, defuse or drop).
`secrets`: secret-shaped strings (API keys, private keys, tokens) redacted from answers,
including while they stream.
"""

from rag.guard.injection import InjectionPolicy, screen, screen_passages
from rag.guard.secrets import REDACTED, StreamRedactor, redact, redact_answer

__all__ = [
    "REDACTED",
    "InjectionPolicy",
    "StreamRedactor",
    "redact",
    "redact_answer",
    "screen",
    "screen_passages",
]
