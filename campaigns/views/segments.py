"""Staff pages: segments."""
