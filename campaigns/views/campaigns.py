"""Staff pages: campaigns."""
