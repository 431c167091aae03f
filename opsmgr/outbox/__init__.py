"""Side effects after the commit: outbox rows written in the transaction, sent once it has committed."""
