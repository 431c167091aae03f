"""Gates: the findings that stop a step, the physician overrides that let it go on, and the one Gate."""
