"""Campaign staff pages, one module per area: segments, campaigns, messages."""
