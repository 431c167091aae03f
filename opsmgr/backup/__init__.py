"""`flask backup` and `flask restore`: an encrypted bundle of the database, the audit anchors and a manifest."""
