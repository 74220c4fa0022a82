"""`POST /slack/events`: Slack's Events API, slash command and interactivity requests, handed to
the Bolt app (slackbot.app), which verifies each signature first. It is not in our OpenAPI
document: the protocol is Slack's."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from slack_bolt import App, BoltRequest
from starlette.concurrency import run_in_threadpool


def slack_router(bolt: App) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.post("/slack/events")
    async def events(request: Request) -> Response:
        body = (await request.body()).decode("utf-8", "replace")
        bolt_request = BoltRequest(
            body=body, query=request.url.query, headers=dict(request.headers)
        )
        # Listeners record the question and queue it (database, broker): off the event loop.
        reply = await run_in_threadpool(bolt.dispatch, bolt_request)
        headers = {name: values[0] for name, values in reply.headers.items() if values}
        headers.pop("content-length", None)
        return Response(reply.body, status_code=reply.status, headers=headers)

    return router
