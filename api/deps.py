"""Backends reach handlers as `Annotated` dependencies built in the lifespan (override in tests)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ingest.dispatch import Dispatcher
from rag.factory import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_dispatcher(request: Request) -> Dispatcher:
    dispatcher: Dispatcher = request.app.state.dispatcher
    return dispatcher


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]
