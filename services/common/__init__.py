"""Shared building blocks of the four services: settings, database, Kafka, logging, metrics."""
