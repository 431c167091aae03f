"""Two-factor sign-in: TOTP (RFC 6238) codes, recovery codes, a policy per role."""
