"""The probe's prompt set: a JSON-lines or YAML file, or a small built-in default."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

JSON_LINES_SUFFIXES = (".jsonl", ".ndjson", ".json")
YAML_SUFFIXES = (".yaml", ".yml")


class PromptFileError(Exception):
    """A prompt file that cannot be used; `errors` lists every problem, one per line."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Prompt:
    """One prompt: chat messages and an optional cap on output tokens."""

    messages: tuple[dict[str, str], ...]
    max_tokens: int | None = None

    @classmethod
    def user(cls, text: str, max_tokens: int | None = None) -> Prompt:
        """A prompt of one user message."""
        return cls(({"role": "user", "content": text},), max_tokens)


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1)


class _PromptItem(BaseModel):
    """A prompt as written in a file: `messages`, or `prompt` as shorthand for one user message."""

    model_config = ConfigDict(extra="forbid")

    messages: list[_Message] | None = None
    prompt: str | None = Field(default=None, min_length=1)
    max_tokens: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_form(self) -> _PromptItem:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("give either `messages` (a list) or `prompt` (a string)")
        if self.messages is not None and not any(m.role == "user" for m in self.messages):
            raise ValueError("`messages` needs at least one message with role `user`")
        return self

    def to_prompt(self) -> Prompt:
        if self.prompt is not None:
            return Prompt.user(self.prompt, self.max_tokens)
        assert self.messages is not None
        messages = tuple({"role": m.role, "content": m.content} for m in self.messages)
        return Prompt(messages, self.max_tokens)


DEFAULT_PROMPTS: tuple[Prompt, ...] = (
    Prompt.user("Classify the sentiment of this review as positive, negative or neutral: "
                "'Setup took five minutes and it just worked.' Answer with one word."),
    Prompt.user("Summarise in one sentence: The deploy at 14:02 raised p95 latency from 300 ms "
                "to 2.1 s; rolling back at 14:20 restored it. The cause was a missing index."),
    Prompt.user("Extract the city and the date as JSON with keys city and date: "
                "'The conference moves to Lisbon on 12 March 2026.'"),
    Prompt.user("Write a Python function that returns the median of a list of numbers."),
    Prompt.user("Translate to French: 'The service is back to normal.'"),
    Prompt(
        (
            {"role": "system", "content": "You are a terse support agent. Answer in at most "
             "two sentences."},
            {"role": "user", "content": "My invoice shows the wrong company name. How do I "
             "fix it?"},
        ),
    ),
    Prompt.user("List three risks of switching a production service to a new LLM."),
    Prompt.user("What is 17 multiplied by 23? Answer with the number only.", max_tokens=16),
)  # fmt: skip


def load_prompts(path: str | Path) -> list[Prompt]:
    """Prompts from a JSON-lines file (one object per line) or a YAML list; PromptFileError if bad.

    Each item has `messages` (role system/user/assistant, content) or `prompt` (one user
    message), and optionally `max_tokens`. A YAML file may also be `{prompts: [...]}`.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise PromptFileError([f"{path}: cannot read: {exc.strerror}"]) from exc
    suffix = path.suffix.lower()
    if suffix in YAML_SUFFIXES:
        items = _yaml_items(path, text)
    elif suffix in JSON_LINES_SUFFIXES:
        items = _json_lines_items(path, text)
    else:
        try:
            items = _json_lines_items(path, text)
        except PromptFileError:
            items = _yaml_items(path, text)
    prompts: list[Prompt] = []
    errors: list[str] = []
    for where, item in items:
        try:
            prompts.append(_PromptItem.model_validate(item).to_prompt())
        except ValidationError as exc:
            errors.extend(f"{path}: {where}: {_describe(error)}" for error in exc.errors())
    if errors:
        raise PromptFileError(errors)
    if not prompts:
        raise PromptFileError([f"{path}: no prompts in the file"])
    return prompts


def _describe(error: Any) -> str:
    location = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field (expected messages or prompt, and max_tokens)"
    return f"{location}: {message}" if location else message


def _json_lines_items(path: Path, text: str) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    errors: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            items.append((f"line {number}", json.loads(line)))
        except json.JSONDecodeError as exc:
            errors.append(f"{path}: line {number}: not valid JSON: {exc.msg}")
    if errors:
        raise PromptFileError(errors)
    return items


def _yaml_items(path: Path, text: str) -> list[tuple[str, Any]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PromptFileError([f"{path}: not valid YAML: {exc}"]) from exc
    if isinstance(data, dict) and set(data) == {"prompts"}:
        data = data["prompts"]
    if not isinstance(data, list):
        raise PromptFileError(
            [f"{path}: expected a list of prompts (or `prompts:` with a list) at the top level"]
        )
    return [(f"item {index}", item) for index, item in enumerate(data, start=1)]
