"""The outbox: events written with the change that causes them, delivered at least once."""
