"""Every export type has one handler, and every handler states its capabilities on the base."""

import typing

from responsys_assets.config import ExportConfig
from responsys_assets.defs.exports.handlers.base import ExportHandler
from responsys_assets.defs.exports.handlers.registry import HANDLERS


def _export_types() -> set[str]:
    union = typing.get_args(ExportConfig)
    members = typing.get_args(union[0]) if union and typing.get_origin(union[0]) else union
    return {typing.get_args(m.model_fields["type"].annotation)[0] for m in members}


def test_every_export_type_has_a_handler():
    assert set(HANDLERS) == _export_types()


def test_every_handler_is_an_export_handler_that_says_whether_it_may_resend():
    for kind, handler in HANDLERS.items():
        assert issubclass(handler, ExportHandler), kind
        assert isinstance(handler.idempotent, bool), kind
        for required in ("fields_for", "send"):
            assert getattr(handler, required) is not getattr(ExportHandler, required), (
                kind,
                required,
            )
