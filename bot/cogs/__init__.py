"""The bot's features, one cog per module: composing, information, and the error handler."""
