-- scout_reader on bronze_ingestion_batches: the batch's counts, status and times, not the
-- partner's own strings (batch_id, partner echo the input unscrubbed; silver holds the
-- scrubbed copies).
REVOKE SELECT ON scout.bronze_ingestion_batches FROM scout_reader;
GRANT SELECT (record_count, sent_at, received_at, status, kafka_topic, kafka_partition,
    kafka_offset) ON scout.bronze_ingestion_batches TO scout_reader;
