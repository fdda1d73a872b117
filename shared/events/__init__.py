"""Event contracts and the Kafka plumbing every service shares."""
