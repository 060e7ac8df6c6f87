"""A package's life after convert: its record, `nb2prod update`, and never losing a user's work."""
