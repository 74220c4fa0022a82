"""The app manifest in docs/ installs what the bot listens to: the same slash command, the
events it handles, the scopes its Web API calls need, and our one endpoint for all of it."""

from __future__ import annotations

from pathlib import Path

import yaml

from rag.config import SlackSettings

MANIFEST = Path(__file__).resolve().parents[2] / "docs" / "slack-manifest.yml"


def test_manifest_matches_the_bot() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    settings = manifest["settings"]
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == SlackSettings().command
    urls = [command["url"], settings["event_subscriptions"]["request_url"]]
    urls.append(settings["interactivity"]["request_url"])
    assert all(url.endswith("/slack/events") for url in urls)
    assert settings["interactivity"]["is_enabled"]
    events = set(settings["event_subscriptions"]["bot_events"])
    assert {"app_mention", "message.im", "message.channels", "message.groups"} <= events
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    needed = {"app_mentions:read", "im:history", "channels:history", "chat:write", "commands"}
    assert needed <= scopes
