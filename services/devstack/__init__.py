"""The local stack of ``scout dev``: real Apache Kafka (KRaft) and PostgreSQL on loopback."""
