"""Acting in real environments: the evaluation harness every return comes from, and the online loop."""
