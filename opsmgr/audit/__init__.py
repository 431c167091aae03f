"""The append-only, hash-chained audit trail (45 CFR 164.312(b); ONC 170.315(d)(2), (d)(3))."""
