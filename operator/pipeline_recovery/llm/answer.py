"""The LLM's answer as validated data: what we accept, how keys are spelled, what is rejected."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, field_validator

from pipeline_recovery.llm.errors import LLMInvalidAnswer
from pipeline_recovery.redaction import redact
from pipeline_recovery.taxonomy import CATEGORIES

# The remediation catalog's action names (issue 5). The LLM may suggest one; policy decides.
# A Literal so pydantic rejects anything else; tests pin it to remediation.catalog.CATALOG.
SuggestedAction = Literal[
    "retry",
    "retry-with-more-memory",
    "retry-with-more-storage",
    "retry-with-longer-deadline",
    "create-directory",
    "clear-cache",
    "none",
]
CATALOG_ACTIONS: tuple[str, ...] = get_args(SuggestedAction)
MAX_CONTENT_CHARS = 16_000
MAX_ESTIMATED_MINUTES = 7 * 24 * 60

# Normalised key (lowercase, letters and digits only) -> field. Covers snake_case, camelCase
# and the seed's upper-case names (ROOT_CAUSE, SOLUTION, SIMILAR_CASES, ESTIMATED_TIME_M).
_KEYS = {
    "rootcause": "root_cause",
    "solution": "solution",
    "similarcases": "similar_cases",
    "estimatedtimem": "estimated_minutes",
    "estimatedminutes": "estimated_minutes",
    "estimatedrecoveryminutes": "estimated_minutes",
    "estimatedtimeminutes": "estimated_minutes",
    "category": "category",
    "confidence": "confidence",
    "suggestedaction": "suggested_action",
    "action": "suggested_action",
}
_FENCE = re.compile(r"^\s*```[\w-]*\s*\n(?P<body>.*?)\n?\s*```\s*$", re.DOTALL)

ShortText = Annotated[StrictStr, Field(min_length=1, max_length=300)]


class AIAnswer(BaseModel):
    """An answer we accept. Extra keys are ignored; every string is redacted again on the way in."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    root_cause: StrictStr = Field(min_length=1, max_length=2000)
    solution: StrictStr = Field(min_length=1, max_length=4000)
    similar_cases: list[ShortText] = Field(default_factory=list, max_length=10)
    estimated_minutes: int | None = Field(default=None, ge=0, le=MAX_ESTIMATED_MINUTES)
    category: str | None = None
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    suggested_action: SuggestedAction = "none"

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str | None) -> str | None:
        if value is not None and value not in CATEGORIES:
            raise ValueError(f"unknown category {value[:40]!r}")
        return value

    @field_validator("estimated_minutes", mode="before")
    @classmethod
    def _no_bool_minutes(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError("must be a number of minutes")
        return value

    @field_validator("root_cause", "solution")
    @classmethod
    def _redact_text(cls, value: str) -> str:
        # The model never saw a secret, but it lands in a status: be sure twice.
        return redact(value.strip())

    @field_validator("similar_cases")
    @classmethod
    def _redact_cases(cls, value: list[str]) -> list[str]:
        return [redact(item.strip()) for item in value]


def _normalise_keys(doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        field = _KEYS.get(re.sub(r"[^a-z0-9]", "", str(key).lower()))
        if field is not None and field not in out:
            out[field] = value
    return out


def parse_answer(content: str) -> AIAnswer:
    """Validate the assistant's text; LLMInvalidAnswer with a one-line reason on anything else."""
    if len(content) > MAX_CONTENT_CHARS:
        raise LLMInvalidAnswer(f"answer longer than {MAX_CONTENT_CHARS} characters")
    fenced = _FENCE.match(content)
    text = fenced.group("body") if fenced else content.strip()
    try:
        doc = json.loads(text)
    except ValueError:
        raise LLMInvalidAnswer("answer is not JSON") from None
    if not isinstance(doc, dict):
        raise LLMInvalidAnswer(f"answer is a JSON {type(doc).__name__}, not an object")
    try:
        return AIAnswer.model_validate(_normalise_keys(doc))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(part) for part in err["loc"]) or "answer"
        raise LLMInvalidAnswer(f"answer field {where}: {err['msg']}") from None


def answer_schema_text() -> str:
    """The schema as the system prompt states it (kept next to the model it describes)."""
    return json.dumps(
        {
            "root_cause": "string, one or two sentences",
            "solution": "string, concrete steps",
            "similar_cases": ["short strings, at most 10"],
            "estimated_minutes": "integer minutes to recover",
            "category": "one of: " + ", ".join(CATEGORIES),
            "confidence": "number 0..1",
            "suggested_action": "one of: " + ", ".join(CATALOG_ACTIONS),
        },
        indent=1,
    )
