"""A clearly fictional demo clinic for first runs and try-outs."""
