"""Pure decision rules: standard library only; `now` and the policy are always parameters."""
