"""The Slack bot: ask the documents from Slack, answers in the thread with their sources.

`app` receives Slack's requests (Bolt; HTTP at /slack/events or Socket Mode), `delivery`
answers in a Celery task, `blocks` renders answers as Block Kit. Setup: docs/slack.md.
"""
