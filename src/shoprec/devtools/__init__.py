"""Developer tools: export notebook cells to modules and lint notebooks."""
