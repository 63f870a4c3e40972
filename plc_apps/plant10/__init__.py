"""Plant-scale app: ten bioreactor skids (about 2,600 I/O points) from the bioreactor's blocks."""
