"""The web dashboard: live state of the bot over REST and a WebSocket, and a page to watch it."""
