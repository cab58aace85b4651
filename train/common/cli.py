"""Command-line flags generated from a typed config dataclass.

Every field becomes ``--field-name`` with its default and help text (from
``dataclasses.field(metadata={'help': ...})``), so ``--help`` always lists
every setting with its default.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, Sequence, TypeVar

from train.common import devices
from train.common.config import TrainConfig, flag

C = TypeVar("C", bound=TrainConfig)


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from error


def _optional(kind):
    def parse(text: str):
        return None if text.lower() in ("none", "") else kind(text)
    parse.__name__ = kind.__name__
    return parse


def build_parser(config_cls: type, description: str) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with one flag per field of ``config_cls``."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    hints = typing.get_type_hints(config_cls)
    for field in dataclasses.fields(config_cls):
        if not field.metadata.get("flag", True):  # filled in by the command, recorded in config.json
            continue
        hint = hints[field.name]
        kwargs: dict[str, Any] = {"default": field.default, "help": field.metadata.get("help", " ")}
        if "choices" in field.metadata:
            kwargs["choices"] = field.metadata["choices"]
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if hint is bool or hint == typing.Optional[bool]:  # Optional: None until given (the recipe fills it)
            kwargs.update(type=_parse_bool, nargs="?", const=True, metavar="BOOL")
        elif origin is tuple:
            kwargs.update(type=_int_tuple, metavar="N,N,...")
        elif origin is typing.Union and type(None) in args:
            inner = next(a for a in args if a is not type(None))
            # With choices, "none" may be one of them; unset is the default alone.
            kwargs.update(type=inner if "choices" in kwargs else _optional(inner))
        else:
            kwargs.update(type=hint)
        parser.add_argument(flag(field.name), **kwargs)
    group = parser.add_argument_group(
        "several processes", "one job over several processes or hosts, launched by hand (SLURM and "
        "Open MPI need none of these); read at start-up")
    for name, (option_flag, variables, text) in devices.DISTRIBUTED_FLAGS.items():
        group.add_argument(option_flag, dest="_" + name, default=None, help=f"{text} (or ${variables[0]})",
                           metavar="HOST:PORT" if name == "coordinator_address" else "N")
    return parser


def parse_config(config_cls: type[C], description: str, argv: Sequence[str] | None = None) -> C:
    """Parses ``argv`` into a validated ``config_cls`` instance.

    Invalid values raise through ``parser.error`` (exit status 2, message on stderr).
    """
    parser = build_parser(config_cls, description)
    namespace = parser.parse_args(argv)
    fields = {k: v for k, v in vars(namespace).items() if not k.startswith("_")}
    try:
        config = config_cls(**fields)
        config.validate()
    except ValueError as error:
        parser.error(str(error))
    return config
