"""Telling the user: desktop notifications, hooks, health-check pings, and their rate limits."""
