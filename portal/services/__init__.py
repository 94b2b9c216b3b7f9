"""User and group rules. Services change and flush; the calling view or command commits once."""
