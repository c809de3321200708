"""Which fields of an SDK reply model a JSON reply of ours lacks, recursively."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import AliasChoices, AliasPath, BaseModel, RootModel


def _names(name: str, field: Any) -> set[str]:
    """Every key under which the SDK model reads this field."""
    names = {name}
    if field.alias:
        names.add(field.alias)
    alias = field.validation_alias
    if isinstance(alias, str):
        names.add(alias)
    elif isinstance(alias, AliasChoices):
        names |= {c for c in alias.choices if isinstance(c, str)}
    elif isinstance(alias, AliasPath):
        names.add(str(alias.path[0]))
    return names


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models inside an annotation (through Optional, unions and lists)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, tuple, typing.Annotated):
        found: list[type[BaseModel]] = []
        for argument in typing.get_args(annotation):
            found += _models_in(argument)
        return found
    return []


def missing_fields(model: type[BaseModel], data: Any, path: str = "") -> list[str]:
    """Dotted paths of the model's fields that `data` does not carry (lists: every item)."""
    if issubclass(model, RootModel):
        inner = _models_in(model.model_fields["root"].annotation)
        items = data if isinstance(data, list) else [data]
        return [m for item in items for sub in inner for m in missing_fields(sub, item, path)]
    if not isinstance(data, dict):
        return []
    missing = []
    for name, field in model.model_fields.items():
        keys = _names(name, field) & set(data)
        if not keys:
            missing.append(f"{path}{field.alias or name}")
            continue
        value = data[next(iter(keys))]
        for sub in _models_in(field.annotation):
            values = value if isinstance(value, list) else [value]
            for item in values:
                missing += missing_fields(sub, item, f"{path}{name}.")
    return sorted(set(missing))
