"""Adapters that let other frameworks use the service over its REST API (no server code here)."""
