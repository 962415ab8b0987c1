"""Scout pipeline: streaming medallion layers (bronze → platinum) on Kafka and PostgreSQL."""
