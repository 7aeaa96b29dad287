"""The evaluation suite behind `make eval`: tasks, harness, scoring."""
