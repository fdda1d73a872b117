"""The dashboard: server-rendered pages for leaders and officers, reading the other services'
public HTTP APIs with the signed-in user's token (no database of its own)."""
