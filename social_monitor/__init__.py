"""Domain logic of the social monitoring pipeline: plain Python, no Dagster inside."""
