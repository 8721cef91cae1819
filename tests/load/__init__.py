"""make load: the load tool (run.py) and its CI-sized test."""
