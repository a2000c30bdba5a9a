"""fraudnet: the example repo's own model and data loading."""
