"""Backends reach handlers as `Annotated` dependencies built in the lifespan (override in tests)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from rag.errors import InvalidInput
from rag.factory import Runtime
from rag.intake import Intake


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_intake(request: Request) -> Intake:
    intake: Intake = request.app.state.intake
    return intake


async def known_form_fields(request: Request) -> None:
    """A multipart field the route does not declare (a typo such as `allowed_group`) is a 422:
    ignoring it could publish a document meant to be restricted. (JSON bodies forbid unknown
    fields in their models; FastAPI has no such switch for forms.)"""
    declared = {field.alias for field in request.scope["route"].dependant.body_params}
    unknown = sorted(set((await request.form()).keys()) - declared)  # parsed once, cached
    if unknown:
        raise InvalidInput(
            f"unknown form field(s): {', '.join(unknown)}; expected: {', '.join(sorted(declared))}"
        )


KnownFormFields = Depends(known_form_fields)
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
IntakeDep = Annotated[Intake, Depends(get_intake)]
