"""Label Studio: the REST client, the labeling config, and the result format."""
