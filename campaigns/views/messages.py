"""Staff pages: messages."""
