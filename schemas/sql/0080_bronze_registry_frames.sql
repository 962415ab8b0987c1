-- Registry-framed source records (Confluent wire format: magic byte, schema id, payload).
-- raw_data holds the decoded object (the JSON Schema payload, or the Avro datum as JSON);
-- these columns keep what reproduces the record exactly: the writer schema's id in the
-- registry and the payload bytes as received (on record_index 0 only: an API batch's other
-- rows come from the same Kafka record). NULL for plain JSON records.
ALTER TABLE scout.bronze_transactions_raw
    ADD COLUMN IF NOT EXISTS registry_schema_id integer,
    ADD COLUMN IF NOT EXISTS registry_payload bytea;
COMMENT ON COLUMN scout.bronze_transactions_raw.registry_schema_id IS
    'Schema Registry id of the writer schema of a framed record (NULL: plain JSON)';
COMMENT ON COLUMN scout.bronze_transactions_raw.registry_payload IS
    'Framed record payload exactly as received, without its 5-byte header (record_index 0)';
