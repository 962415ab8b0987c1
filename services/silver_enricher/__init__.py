"""Silver enricher: validates, deduplicates, enriches and pseudonymises bronze records into silver."""
