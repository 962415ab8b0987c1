"""Gold aggregator: keeps exact per-day business aggregates of silver, fresh within seconds."""
