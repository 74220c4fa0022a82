"""Screening retrieved passages for text aimed at the model rather than the reader.

A document is data, but a model cannot tell data from orders: "ignore previous instructions",
a forged `<|im_start|>system` turn, a tool-call in JSON, or a line hidden from people (zero-width
characters, an HTML comment, `display:none`) all reach it as text. The prompt already says that
passages are not instructions (rag.generation.prompts); this is the second line: patterns that
recognise such text, sentence by sentence, and a policy for what to do with a passage that has it.

- flag: keep the passage as it is; it is counted and named on the answer.
- defuse: strip hidden characters and HTML comments, and replace each offending sentence with
  `REMOVED`, so the model sees that something was there but not what it said.
- drop: leave the passage out of the prompt altogether.

The patterns were fitted on half of tests/fixtures/injection/injected.jsonl and the SciFact
abstracts with an even index, and measured on the other halves (bench/injection.py). Phrasings
they do not know, and injections in other languages, still get through: this lowers the odds,
the prompt's rules and the claim verifier remain.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from rag.models import ScoredChunk, Screened

InjectionPolicy = Literal["flag", "defuse", "drop"]
REMOVED = "[instruction-like text removed]"

# Characters a reader never sees: zero-width, bidi controls, word joiners, Unicode tag letters
# (which can spell a whole hidden ASCII message), fillers that render as blank.
_HIDDEN_CHARS = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    "\u2066-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e007f"
)
_HIDDEN = re.compile(f"[{_HIDDEN_CHARS}]")
# A stray zero-width space or mark is common in text copied from the web (SciFact has five);
# one inside a word, or several together, is hiding something.
_HIDDEN_SUSPECT = re.compile(f"(?<=\\w)[{_HIDDEN_CHARS}]+(?=\\w)|[{_HIDDEN_CHARS}]{{2,}}")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_TAGS = re.compile("[\U000e0000-\U000e007f]")
_BLANK_RUN = re.compile(f"[\\s\u2800{_HIDDEN_CHARS}]{{64,}}")
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")

_I = re.IGNORECASE
_EARLIER = (
    r"(?:all|any|every|the|your|my|these|those|its|of|prior|previous|previously|above|earlier|"
    r"preceding|foregoing|former|original|initial|existing|other|system|safety|given|current|"
    r"old|default|developer|preset)"
)
_ORDERS = (
    r"(?:instructions?|directions?|directives?|rules?|guidelines?|prompts?|commands?|"
    r"constraints?|guardrails?|restrictions?|policies|policy|orders|programming|training|"
    r"context|messages?|safeguards|limitations|filters?)"
)
_ASSISTANT = (
    r"(?:ai|a\.i\.|assistants?|language models?|llms?|chat ?bots?|bots?|ai models?|"
    r"ai systems?|agents?|chatgpt|gpt(?:-\d\w*)?|claude|gemini|copilot|models?)"
)
_SECRET = (
    r"(?:api[ _-]?keys?|secret(?:s| keys?)?|passwords?|passphrases?|credentials?|"
    r"(?:access|auth|bearer|session|refresh) tokens?|tokens|private keys?|ssh keys?|"
    r"environment variables|env(?:ironment)? vars?|\.env|system prompt|hidden prompt|"
    r"initial prompt|(?:your|the) (?:full )?instructions|connection strings?)"
)

PATTERNS: dict[str, re.Pattern[str]] = {
    # Telling the model to drop its rules.
    "ignore_instructions": re.compile(
        rf"\b(?:ignore|disregard|forget|skip|override|overrule|bypass|neglect|abandon|drop|"
        rf"discard|set aside|throw out|pay no attention to|do not follow|don't follow|"
        rf"stop following)"
        rf"\s+(?:{_EARLIER}\s+){{0,4}}{_ORDERS}\b",
        _I,
    ),
    "disregard_above": re.compile(
        r"\b(?:ignore|disregard|forget)\s+(?:everything|all|anything|what(?:ever)?|the)?\s*"
        r"(?:(?:you were|you've been|you have been|i|we) (?:told|said|given|written)\s*)?"
        r"(?:above|before this|prior to this|so far|until now|previously)\b",
        _I,
    ),
    "new_instructions": re.compile(
        r"\b(?:new|updated|revised|real|actual|true|override|overriding|important|urgent|"
        r"additional|secret|hidden|priority)\s+(?:system\s+)?(?:instructions?|directives?|orders|"
        r"task)\s*(?::|follow|are\b|for (?:the )?(?:ai|assistant|model))",
        _I,
    ),
    # Giving the model another identity.
    "role_change": re.compile(
        r"\byou\s+(?:are|'re)\s+(?:now|no longer|actually|henceforth|from now on)\b|"
        r"\bfrom now on,?\s+you\b|\byou\s+will\s+now\s+(?:act|behave|respond|answer|be)\b|"
        r"\b(?:pretend|imagine)\s+(?:to be|you are|that you are)\b|"
        r"\b(?:act|behave|respond)\s+as\s+(?:if you were\s+)?(?:an?|the|my)\s+(?:\w+\s+){0,2}"
        r"(?:ai|assistant|chatbot|bot|model|persona|character|hacker|admin(?:istrator)?)\b|"
        r"\b(?:developer|god|admin|debug|unrestricted|jailbreak|dan)\s+mode\b|"
        r"\bdo anything now\b|\bjailbr(?:eak|oken)\b|"
        r"\b(?:unfiltered|unrestricted|uncensored)\s+(?:ai|assistant|model|mode|version|answers?)\b",
        _I,
    ),
    "system_prompt": re.compile(
        r"\bsystem\s+(?:prompt|message|instructions?|override|directive)s?\b|"
        r"\b(?:initial|hidden|original|internal|developer)\s+(?:prompt|instructions)\b",
        _I,
    ),
    # Forged conversation turns and chat-template tokens.
    "role_marker": re.compile(
        r"(?:^|[\n>\]]|\s{2,})\s*(?:system|assistant|developer|user|human|ai)\s*:|"
        r"\b(?:system|assistant)\s*:\s*(?:you|ignore|new|the (?:user|assistant))\b|"
        r"<\|\s*(?:im_start|im_end|system|user|assistant|endoftext|begin_of_text|eot_id|"
        r"start_header_id|end_header_id)\s*\|>|<\s*/?\s*(?:start_of_turn|end_of_turn|sys|s)\s*>|"
        r"\[/?\s*(?:INST|SYS|SYSTEM)\s*\]|<<\s*/?SYS\s*>>|"
        r"#{2,}\s*(?:instruction|system|response|assistant|user|human|input)s?\b\s*:?",
        _I,
    ),
    # Tool and function calls written into a document.
    "tool_call": re.compile(
        r"\{\s*\"(?:tool|tool_name|function|function_call|tool_calls|name|action|api|command)\""
        r"\s*:|"
        r"</?\s*(?:tool_call|tool_use|function_call|function_calls|invoke|tool|antml:\w+)\b[^>]*>|"
        r"\b(?:function_call|tool_calls?|tool_use)\b|"
        r"\b(?:call|invoke|run|execute|use)\s+the\s+(?:\w+\s+)?(?:tool|function|plugin|api)\s+"
        r"(?:named|called|`|\"|')|"
        r"\b(?:call|invoke|execute)\s+`?\w+\(",
        _I,
    ),
    # Asking for what the model must never give.
    "secret_request": re.compile(
        rf"\b(?:reveal|print|show|output|leak|send|share|tell|display|expose|dump|repeat|"
        rf"exfiltrate|disclose|give|list|return|include|write out|echo|post|upload|email|"
        rf"forward|transmit|copy)\s+(?:me\s+|us\s+|out\s+)?(?:(?:the|your|all|any|its|every|"
        rf"contents? of|of|full|complete|verbatim|exact|stored|current|admin|user's|users'|"
        rf"this)\s+)*"
        rf"{_SECRET}",
        _I,
    ),
    # Steering the service: another model, policy, temperature, behaviour.
    "model_change": re.compile(
        r"\b(?:switch|change|swap|route|escalate|set|move)\s+(?:\w+\s+){0,2}to\s+"
        r"(?:the\s+)?(?:model|policy|llm|gpt|claude|mode)\b|"
        r"\b(?:use|select|pick|apply)\s+(?:the\s+)?(?:model|policy|llm)\s+[\w\"'`-]+|"
        r"\b(?:switch|change)\s+(?:your|the)\s+(?:model|policy|persona|safety|mode)\b|"
        r"\b(?:disable|turn off|deactivate|remove|lift)\s+(?:\w+\s+)?(?:safety|content|"
        r"moderation|guardrails?|filters?|restrictions?|verification|censorship)\b",
        _I,
    ),
    # Addressing the model by what it is.
    "addresses_model": re.compile(
        rf"\bif you are an?\s+(?:\w+\s+)?{_ASSISTANT}\b|"
        rf"\bas an?\s+(?:\w+\s+)?{_ASSISTANT}\b[^.]{{0,80}}\b(?:you must|you should|please|"
        rf"(?:reading|processing|summari[sz]ing|answering) (?:this|these))\b|"
        rf"\b(?:note|message|instructions?|attention|memo|reminder)\s+(?:to|for)\s+(?:the\s+|any\s+"
        rf"|all\s+)?(?:\w+\s+)?{_ASSISTANT}\b|"
        rf"\b(?:attention|dear|hey|hello|hi|to)\s+(?:the\s+|any\s+|all\s+)?{_ASSISTANT}[,:!]|"
        rf"\b{_ASSISTANT}\s+(?:reading|processing|summari[sz]ing|parsing|indexing)\s+"
        rf"(?:this|these)\b",
        _I,
    ),
    # Dictating the reply.
    "dictates_reply": re.compile(
        r"\b(?:you must|you should|you will|you need to|always|only|instead,?)\s+"
        r"(?:now\s+|always\s+|only\s+)?(?:respond|reply|answer|say|output|print|write|state)\s+"
        r"(?:with|by|that|only|in|exactly|the (?:phrase|word|following))\b|"
        r"\b(?:respond|reply|answer)\s+(?:only\s+)?with\s+(?:the\s+)?(?:phrase|word|text|string|"
        r"following|exactly|\")|"
        r"\b(?:begin|start|end|prefix)\s+(?:your|every|each|all)\s+(?:\w+\s+)?(?:answer|response|"
        r"reply|replies|responses|answers|message)s?\s+with\b|"
        r"\bdo not\s+(?:tell|mention|inform|alert|reveal to|warn|show)\s+(?:the\s+)?"
        r"(?:user|reader|human|operator)\b|"
        r"\bwithout\s+(?:telling|informing|alerting|warning|notifying)\s+the\s+(?:user|reader|"
        r"human|operator)\b|"
        r"\bend of (?:the\s+)?(?:document|context|passages?|data|user input)\b",
        _I,
    ),
    # Sending data elsewhere: markdown images and links with a query to be filled in.
    "exfiltration": re.compile(
        r"!\[[^\]]*\]\(\s*https?://[^)\s]*[?&][^)\s]*(?:=\{|=\[|=<|=\$|data=|q=|secret|key|"
        r"token)|"
        r"\b(?:send|post|upload|forward|transmit|append)\s+(?:[\w']+\s+){0,8}to\s+https?://|"
        r"\b(?:visit|open|fetch|browse to|navigate to|request)\s+https?://\S+\s+(?:and|with)\b",
        _I,
    ),
    # Text meant to be invisible to people.
    "hidden_markup": re.compile(
        r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?:\.0*)?(?:px|pt|em)?\b|"
        r"opacity\s*:\s*0(?:\.0*)?\s*[;\"']|color\s*:\s*(?:#fff(?:fff)?|white)\s*;?\s*"
        r"background(?:-color)?\s*:\s*(?:#fff(?:fff)?|white)|\bhidden(?:=\"hidden\"|>)|"
        r"\[hidden text\]|\bwhite text on (?:a )?white\b",
        _I,
    ),
}
HIDDEN_PATTERNS = ("zero_width", "bidi_override", "tag_characters", "blank_run", "html_comment")


@dataclass(frozen=True, slots=True)
class Finding:
    """What screening found in one text, and the text to use under the policy."""

    patterns: tuple[str, ...]
    text: str  # defused (or the original when nothing was found or under "flag")

    @property
    def flagged(self) -> bool:
        return bool(self.patterns)


def hidden_patterns(text: str) -> list[str]:
    found = []
    if _TAGS.search(text):
        found.append("tag_characters")
    if _BIDI.search(text):
        found.append("bidi_override")
    if _HIDDEN_SUSPECT.search(_TAGS.sub("", _BIDI.sub("", text)).replace("\u00ad", "")):
        found.append("zero_width")
    if _BLANK_RUN.search(text):
        found.append("blank_run")
    if _HTML_COMMENT.search(text):
        found.append("html_comment")
    return found


def strip_hidden(text: str) -> str:
    """The text as a reader sees it: no invisible characters, comments or long blank runs."""
    text = _HTML_COMMENT.sub(" ", text)
    text = _BLANK_RUN.sub(" ", text)
    return _HIDDEN.sub("", text)


def sentence_patterns(sentence: str) -> list[str]:
    """The instruction patterns one sentence matches (on its NFKC form: fullwidth letters and
    the like read as plain ones)."""
    plain = unicodedata.normalize("NFKC", sentence)
    return [name for name, pattern in PATTERNS.items() if pattern.search(plain)]


def screen(text: str, policy: InjectionPolicy = "defuse") -> Finding:
    found = hidden_patterns(text)
    visible = strip_hidden(text)
    # Matching also runs on the comments' own text, which strip_hidden removes.
    hidden_text = " ".join(_HTML_COMMENT.findall(text))
    pieces = _SENTENCE.split(visible)
    kept: list[str] = []
    for piece in pieces:
        names = sentence_patterns(piece)
        found.extend(n for n in names if n not in found)
        if names:
            if not kept or kept[-1] != REMOVED:
                kept.append(REMOVED)
        elif piece:
            kept.append(piece)
    for name in sentence_patterns(hidden_text) if hidden_text else []:
        if name not in found:
            found.append(name)
    if not found or policy == "flag":
        return Finding(tuple(found), text)
    if "html_comment" in found and REMOVED not in kept:
        kept.append(REMOVED)
    return Finding(tuple(found), " ".join(kept))


def screen_passages(
    hits: list[ScoredChunk], policy: InjectionPolicy
) -> tuple[list[ScoredChunk], Screened | None]:
    """The passages to show the model under `policy`, and what was found (None: nothing)."""
    kept: list[ScoredChunk] = []
    screened = Screened()
    patterns: set[str] = set()
    for hit in hits:
        finding = screen(hit.chunk.text, policy)
        if not finding.flagged:
            kept.append(hit)
            continue
        screened.flagged += 1
        patterns.update(finding.patterns)
        if policy == "drop":
            screened.dropped += 1
        elif policy == "defuse":
            screened.defused += 1
            chunk = hit.chunk.model_copy(update={"text": finding.text})
            kept.append(hit.model_copy(update={"chunk": chunk}))
        else:
            kept.append(hit)
    if not screened.flagged:
        return kept, None
    screened.patterns = sorted(patterns)
    return kept, screened
