"""The engine: the only room that owns torch and audiocraft (in the worker process)."""
